// CSS imports of the console compile to nothing in the jsdom tests.
export default {};
