/**
 * Messages one edge node sends another through its broker inbox (`Broker.sendToNode`), typed
 * here and encoded in this one place. The wire form is the tab-separated one every node
 * version has spoken, so a cluster mid-upgrade still understands itself:
 *
 *   c\t<connection>\t<frame>            a direct message for one connection
 *   u\t<user>\t<except>\t<frame>        a direct message for a user's connections but one
 *   h\t<request>\t<from>\t<session>     "hand session <session> over; answer <from>"
 *   H\t<request>\t                      the handover is done (the session is saved)
 *
 * Ids, user ids and request ids never hold a tab; the last field (a JSON frame, a session id)
 * runs to the end, so a frame is carried as is.
 */
export type NodeMessage =
  | { kind: 'direct_to_connection'; connectionId: string; frame: string }
  | { kind: 'direct_to_user'; userId: string; exceptConnectionId: string; frame: string }
  | { kind: 'handover_request'; request: string; from: string; sessionId: string }
  | { kind: 'handover_done'; request: string };

export function encodeNodeMessage(message: NodeMessage): string {
  switch (message.kind) {
    case 'direct_to_connection':
      return `c\t${message.connectionId}\t${message.frame}`;
    case 'direct_to_user':
      return `u\t${message.userId}\t${message.exceptConnectionId}\t${message.frame}`;
    case 'handover_request':
      return `h\t${message.request}\t${message.from}\t${message.sessionId}`;
    case 'handover_done':
      return `H\t${message.request}\t`;
  }
}

/** The message in `payload`; undefined for anything this version does not know (ignored, as before). */
export function decodeNodeMessage(payload: string): NodeMessage | undefined {
  const a = payload.indexOf('\t');
  const b = payload.indexOf('\t', a + 1);
  if (a < 0 || b < 0) return undefined;
  const kind = payload.slice(0, a);
  if (kind === 'c') return { kind: 'direct_to_connection', connectionId: payload.slice(a + 1, b), frame: payload.slice(b + 1) };
  if (kind === 'H') return { kind: 'handover_done', request: payload.slice(a + 1, b) };
  if (kind !== 'u' && kind !== 'h') return undefined;
  const c = payload.indexOf('\t', b + 1);
  if (c < 0) return undefined;
  if (kind === 'u') return { kind: 'direct_to_user', userId: payload.slice(a + 1, b), exceptConnectionId: payload.slice(b + 1, c), frame: payload.slice(c + 1) };
  return { kind: 'handover_request', request: payload.slice(a + 1, b), from: payload.slice(b + 1, c), sessionId: payload.slice(c + 1) };
}
