/** What the bus needs of a logger: pino's call shape, declared here so the bus depends on no logger. */
export interface BusLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug?(obj: object, msg?: string): void;
}

const line = (level: number) => (obj: object, msg?: string) => {
  process.stderr.write(`${JSON.stringify({ level, time: Date.now(), name: 'bus', ...obj, msg })}\n`);
};

/** Used only when the caller passes no logger: pino-shaped JSON lines on stderr. */
export const stderrLogger: BusLogger = { debug: () => {}, info: line(30), warn: line(40), error: line(50) };
