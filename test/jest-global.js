/**
 * Jest runs global setup/teardown outside its module system (no moduleNameMapper), so
 * this shim teaches Node our TypeScript and path aliases before loading them.
 */
const path = require('node:path');
const root = path.resolve(__dirname, '..');
require('ts-node').register({
  transpileOnly: true,
  project: path.join(root, 'tsconfig.jest.json'),
});
require('tsconfig-paths').register({
  baseUrl: root,
  paths: require(path.join(root, 'tsconfig.json')).compilerOptions.paths,
});

module.exports = {
  setup: () => require('../libs/testing/src/global-setup').default(),
  teardown: () => require('../libs/testing/src/global-teardown').default(),
};
