/**
 * The relay's sleeping and waking: a committed append (its NOTIFY) ends an idle sleep early;
 * only stop() ends a backoff early, so a stream of appends cannot turn retries against a down
 * broker into a hot loop. A wake that comes while awake is kept for the next idle sleep.
 */
export function createSleeper(isRunning: () => boolean) {
  let woken = false;
  let sleeping: { end: () => void; wakeable: boolean } | null = null;
  const wake = () => {
    woken = true;
    if (sleeping?.wakeable) sleeping.end();
  };
  const interrupt = () => sleeping?.end();
  /** Forgets earlier wakes: called as a read starts, so only appends after it end the next sleep. */
  const clearWake = () => {
    woken = false;
  };
  const sleep = (ms: number, wakeable: boolean) =>
    new Promise<void>((resolve) => {
      if (!isRunning() || (wakeable && woken)) {
        woken = false;
        resolve();
        return;
      }
      const timer = setTimeout(end, ms);
      function end() {
        clearTimeout(timer);
        sleeping = null;
        woken = false;
        resolve();
      }
      sleeping = { end, wakeable };
    });
  return { wake, interrupt, sleep, clearWake };
}
