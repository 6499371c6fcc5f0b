import { ConfigError, int, loadSettings, str } from '@switchyard/config';
import { edgeSettings, mintToken } from '@switchyard/edge';
import { UsageError, csv, parse } from '../args.js';

export const summary = 'mint an HS256 JWT with JWT_SECRET (prints the token)';

const tokenSettings = {
  jwtSecret: edgeSettings.jwtSecret,
  jwtIssuer: edgeSettings.jwtIssuer,
  jwtAudience: edgeSettings.jwtAudience,
  ttl: int('TOKEN_TTL_S', 3600, 'lifetime of a minted token', { min: 1 }),
  sub: str('TOKEN_SUB', undefined, 'subject of a minted token'),
};

export async function token(argv: string[]): Promise<void> {
  const { values, positionals, common } = parse(argv, {
    sub: { type: 'string' },
    user: { type: 'string' },
    permissions: { type: 'string' },
    channels: { type: 'string' },
    publish: { type: 'string' },
    ttl: { type: 'string' },
    json: { type: 'boolean' },
  });
  const settings = loadSettings(tokenSettings, { env: common.env, file: common.file });
  if (settings.jwtSecret === undefined) throw new ConfigError('JWT_SECRET', 'is required to mint a token');
  const sub = (values.sub as string | undefined) ?? (values.user as string | undefined) ?? positionals[0] ?? settings.sub;
  if (sub === undefined || sub === '') throw new UsageError('token needs a subject: switchyard token --sub <user id>');
  const ttl = values.ttl === undefined ? settings.ttl : Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl < 1) throw new UsageError('--ttl must be a positive integer (seconds)');
  const minted = await mintToken(settings.jwtSecret, {
    sub,
    ttlS: ttl,
    ...(csv(values.permissions) && { permissions: csv(values.permissions) }),
    ...(csv(values.channels) && { channels: csv(values.channels) }),
    ...(csv(values.publish) && { publish: csv(values.publish) }),
    ...(settings.jwtIssuer !== undefined && { issuer: settings.jwtIssuer }),
    ...(settings.jwtAudience !== undefined && { audience: settings.jwtAudience }),
  });
  if (values.json === true) {
    process.stdout.write(JSON.stringify({ token: minted.token, expires_at: new Date(minted.expiresAt * 1000).toISOString() }) + '\n');
  } else {
    process.stdout.write(minted.token + '\n');
  }
}
