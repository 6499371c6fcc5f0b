export { ErrorCode, CloseCode } from './codes.js';
export { SwitchyardError } from './errors.js';
export { isValidChannel, matchGlob, matchesAny, jobChannel, MAX_CHANNEL_LENGTH } from './channel.js';
export { parseClientFrame, validateClientFrame } from './parse.js';
export { nestedTooDeep, MAX_JSON_DEPTH } from './nesting.js';
export type { ParseResult } from './parse.js';
export { encodeEvent, eventPrefix, eventSuffix, encodeLocalEvent, encodeFrame, encodeError } from './encode.js';
export type {
  Ref,
  Json,
  ClientFrame,
  ClientFrameType,
  AuthFrame,
  SubscribeFrame,
  UnsubscribeFrame,
  PublishFrame,
  DirectFrame,
  PingFrame,
  CancelFrame,
  PresenceFrame,
  ServerFrame,
  AuthSuccessFrame,
  AuthErrorFrame,
  SubscriptionResultFrame,
  SnapshotFrame,
  EventFrame,
  ErrorFrame,
  ReconnectFrame,
} from './frames.js';
