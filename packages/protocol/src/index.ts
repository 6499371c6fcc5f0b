export { ErrorCode, CloseCode } from './codes.js';
export { isValidChannel, matchGlob, matchesAny, jobChannel, jobChannelName, MAX_CHANNEL_LENGTH } from './channel.js';
export { JobEvent } from './jobs.js';
export { SwitchyardError } from './errors.js';
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
  ServerFrameType,
  AuthSuccessFrame,
  AuthErrorFrame,
  AuthExpiredFrame,
  SubscriptionResultFrame,
  SnapshotFrame,
  UnsubscribedFrame,
  EventFrame,
  ServerDirectFrame,
  AckFrame,
  PongFrame,
  ErrorFrame,
  ReconnectFrame,
  PresenceUser,
  PresenceResultFrame,
  JoinFrame,
  LeaveFrame,
} from './frames.js';
