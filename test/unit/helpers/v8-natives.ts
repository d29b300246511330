import { setFlagsFromString } from 'node:v8';

/**
 * V8's own view of objects, for the tests of the node:http2 workarounds: functions compiled while
 * natives syntax is allowed (the flag is put back at once, so nothing else in the test file is
 * compiled with it).
 */
export function v8Natives(): { hasFastProperties(o: object): boolean; haveSameMap(a: object, b: object): boolean } {
  setFlagsFromString('--allow-natives-syntax');
  try {
    return {
      hasFastProperties: new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean,
      haveSameMap: new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean,
    };
  } finally {
    setFlagsFromString('--no-allow-natives-syntax');
  }
}
