export * from './api-keys.repository';
export * from './devices.repository';
export * from './orgs.repository';
export * from './projects.repository';
export * from './device-progress.repository';
