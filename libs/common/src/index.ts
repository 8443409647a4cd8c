export * from './app-error';
export * from './cursor';
export * from './uuid';
export * from './page.dto';
export * from './validation';
export * from './time';
export * from './failures';
export * from './deadline';
