import { apiBase } from './client';

it('finds the api one level above the console, under any prefix', () => {
  expect(apiBase('http://127.0.0.1:8000/console/')).toBe('http://127.0.0.1:8000');
  expect(apiBase('http://127.0.0.1:8000/console/index.html')).toBe('http://127.0.0.1:8000');
  expect(apiBase('https://example.com/telemetry/console/#/devices')).toBe(
    'https://example.com/telemetry',
  );
});
