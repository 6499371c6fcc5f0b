/** The slice of a pino logger the job code uses; pino's Logger fits it. */
export interface JobLogger {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export const NOOP_LOGGER: JobLogger = { error() {}, warn() {}, info() {}, debug() {} };
