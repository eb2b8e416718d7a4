// miniprogram-simulate renders components in jsdom (its docs/tutorial.md: "testEnvironment": "jsdom").
module.exports = {
  testEnvironment: 'jsdom',
  testMatch: ['<rootDir>/*.test.js'],
  globalSetup: '<rootDir>/setup.js',
  globalTeardown: '<rootDir>/teardown.js',
  testTimeout: 30000,
  maxWorkers: 1
}
