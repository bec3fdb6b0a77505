// The package's ES module entry: the named exports of index.js (Node detects
// them: index.js assigns an object of plain names to module.exports), and
// the module itself as the default export.
export * from './index.js';
export { default } from './index.js';
