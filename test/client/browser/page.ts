/**
 * The browser page of the browser test: follows jobs with @switchyard/client's React hooks
 * and shows a progress bar per job, updated live. Bundled with esbuild by browser.test.ts.
 *
 * Query: ?ws=<ws url>&token=<jwt>&jobs=<id>,<id>[&channel=<name>]
 */
import { SwitchyardClient, type JobState } from '@switchyard/client';
import { useChannel, useConnectionState, useJob } from '@switchyard/client/react';
import { createElement as h, type ReactElement } from 'react';
import { createRoot } from 'react-dom/client';

// The few DOM globals used here, declared so the repository needs no DOM typings.
declare const location: { search: string };
declare const document: { getElementById(id: string): Element | null };

const query = new URLSearchParams(location.search);
const jobs = (query.get('jobs') ?? '').split(',').filter((j) => j !== '');
const channel = query.get('channel');
const client = new SwitchyardClient({ url: query.get('ws') ?? '', token: () => query.get('token') ?? '' });

function JobRow({ jobId }: { jobId: string }): ReactElement {
  const job: JobState = useJob(client, jobId);
  const pct = Math.round(job.progress * 100);
  const detail = [job.stage, job.message].filter((x) => x !== undefined).join(' — ');
  const retry = job.retry === undefined ? '' : `retry ${job.retry.attempt}${job.retry.error === undefined ? '' : `: ${job.retry.error}`}`;
  return h(
    'li',
    { className: `job ${job.status}`, 'data-job': jobId, 'data-status': job.status },
    h('div', { className: 'head' }, h('span', { className: 'id' }, jobId), h('span', { className: 'status' }, job.status)),
    h(
      'div',
      { className: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct, 'aria-label': `job ${jobId}` },
      h('div', { className: 'fill', style: { width: `${pct}%` } }),
    ),
    h('div', { className: 'meta' }, h('span', { className: 'pct' }, `${pct}%`), h('span', { className: 'detail' }, detail), h('span', { className: 'retry' }, retry)),
  );
}

/** The channel's last events, newest last. */
function Feed({ name }: { name: string }): ReactElement {
  const view = useChannel(client, name, { limit: 5 });
  return h(
    'section',
    { className: 'feed', 'data-feed': name, 'data-status': view.status },
    h('h2', null, name),
    h('ol', null, ...view.events.map((e) => h('li', { key: String(e.seq), 'data-seq': e.seq }, `${e.seq} ${e.event} ${JSON.stringify(e.data)}`))),
  );
}

function App(): ReactElement {
  const state = useConnectionState(client);
  const where = state.status === 'connected' ? ` to ${state.nodeId}` : '';
  return h(
    'main',
    null,
    h('h1', null, 'Switchyard jobs'),
    h('p', { className: 'connection', 'data-connection': state.status }, `${state.status}${where}`),
    h('ul', { className: 'jobs' }, ...jobs.map((id) => h(JobRow, { key: id, jobId: id }))),
    channel === null ? null : h(Feed, { name: channel }),
  );
}

createRoot(document.getElementById('root')!).render(h(App));
