/**
 * Every manifest under k8s/, offline: each object is validated against the Kubernetes OpenAPI
 * schema (the validators `kubernetes-models` compiles from it, which reject wrong types and
 * missing required fields) and type-checked against the same schema's TypeScript types,
 * which also reject unknown fields (a misspelt `readinessProbe` would otherwise pass as an
 * ignored extra). Then the kustomizations are rendered by hand (resources, namespace,
 * images) and the pieces are checked to fit together: references, selectors, probes,
 * drain timing, the HPA's custom metric and the prometheus-adapter rule that serves it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { edgeSettings } from '../../packages/edge/src/config.js';
import { runnerSettings } from '../../packages/runner/src/config.js';
import { ROOT } from '../harness/edge.js';

type Obj = Record<string, any>;
interface Doc {
  file: string;
  index: number;
  obj: Obj;
}

const K8S = join(ROOT, 'k8s');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return yamlFiles(path);
      return /\.ya?ml$/.test(name) ? [path] : [];
    })
    .sort();
}

function loadDocs(file: string): Doc[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const out: Doc[] = [];
  docs.forEach((d, index) => {
    if (d.errors.length > 0) throw new Error(`${relative(ROOT, file)}: ${d.errors.map((e) => e.message).join('; ')}`);
    const obj = d.toJS() as Obj | null;
    if (obj !== null) out.push({ file: relative(ROOT, file), index, obj });
  });
  return out;
}

const isKustomization = (o: Obj) => o['kind'] === 'Kustomization';
/** Helm values are YAML but not Kubernetes objects. */
const isHelmValues = (file: string) => /values[^/]*\.ya?ml$/.test(file);

const all = yamlFiles(K8S);
const manifests = all.filter((f) => !isHelmValues(f)).flatMap(loadDocs);
const objects = manifests.filter((d) => !isKustomization(d.obj));

/** `kubernetes-models/<group>/<version>/<Kind>`; the core group is just `v1`. */
function modelPath(apiVersion: string, kind: string): string {
  return `kubernetes-models/${apiVersion}/${kind}`;
}

const docName = (d: Doc) => `${d.file}#${d.index} (${d.obj['kind']} ${d.obj['metadata']?.['name']})`;

/** A kustomization rendered: its resources (recursively), namespace applied, images replaced. */
function build(kustomizationFile: string): Obj[] {
  const k = parseYaml(readFileSync(kustomizationFile, 'utf8')) as Obj;
  expect(k['apiVersion'], kustomizationFile).toBe('kustomize.config.k8s.io/v1beta1');
  expect(k['kind']).toBe('Kustomization');
  const dir = dirname(kustomizationFile);
  const out: Obj[] = [];
  for (const r of k['resources'] as string[]) {
    const path = join(dir, r);
    expect(existsSync(path), `${relative(ROOT, kustomizationFile)} lists ${r}, which does not exist`).toBe(true);
    if (statSync(path).isDirectory()) out.push(...build(join(path, 'kustomization.yaml')));
    else out.push(...loadDocs(path).map((d) => structuredClone(d.obj)));
  }
  const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'APIService']);
  for (const o of out) {
    if (k['namespace'] !== undefined && !clusterScoped.has(o['kind'])) o['metadata'] = { ...o['metadata'], namespace: k['namespace'] };
    for (const pod of podSpecs(o)) {
      for (const c of pod['containers'] as Obj[]) {
        const image = (k['images'] as Obj[] | undefined)?.find((i) => i['name'] === c['image']);
        if (image) c['image'] = `${image['newName'] ?? image['name']}:${image['newTag']}`;
      }
    }
  }
  return out;
}

function podSpecs(o: Obj): Obj[] {
  return o['kind'] === 'Deployment' ? [o['spec']['template']['spec']] : [];
}

const find = (objs: Obj[], kind: string, name: string) => objs.find((o) => o['kind'] === kind && o['metadata']?.['name'] === name);

describe('k8s/ manifests', () => {
  it('parses every YAML file, and each object names its apiVersion, kind and metadata.name', () => {
    expect(all.length).toBeGreaterThanOrEqual(10);
    for (const d of objects) {
      expect(d.obj['apiVersion'], docName(d)).toEqual(expect.any(String));
      expect(d.obj['kind'], docName(d)).toEqual(expect.any(String));
      expect(d.obj['metadata']?.['name'], docName(d)).toEqual(expect.any(String));
    }
  });

  it('validates every object against the Kubernetes OpenAPI schema', async () => {
    const kinds = new Set<string>();
    for (const d of objects) {
      const mod = (await import(modelPath(d.obj['apiVersion'], d.obj['kind'])).catch(() => undefined)) as Record<string, any> | undefined;
      expect(mod, `no schema for ${d.obj['apiVersion']} ${d.obj['kind']} (${docName(d)})`).toBeDefined();
      const Model = mod![d.obj['kind']] as new (data: Obj) => { validate(): void };
      expect(() => new Model(d.obj).validate(), docName(d)).not.toThrow();
      kinds.add(`${d.obj['apiVersion']}/${d.obj['kind']}`);
    }
    expect([...kinds].sort()).toEqual(
      expect.arrayContaining(['apps/v1/Deployment', 'autoscaling/v2/HorizontalPodAutoscaler', 'policy/v1/PodDisruptionBudget', 'v1/ConfigMap', 'v1/Secret', 'v1/Service']),
    );
  });

  it('the validation is real: it refuses a wrong type and a missing required field', async () => {
    const { Deployment } = await import('kubernetes-models/apps/v1/Deployment');
    const edge = structuredClone(objects.find((d) => d.obj['metadata']['name'] === 'switchyard-edge' && d.obj['kind'] === 'Deployment')!.obj);
    edge['spec']['replicas'] = 'three';
    expect(() => new Deployment(edge as never).validate()).toThrow(/replicas/);
    delete edge['spec']['template']['spec']['containers'];
    edge['spec']['replicas'] = 3;
    expect(() => new Deployment(edge as never).validate()).toThrow(/containers/);
  });

  it('has no field the schema does not know (strict: every object type-checked against its schema type)', () => {
    const diagnostics = strictCheck(objects);
    expect(diagnostics).toEqual([]);
    // The check is real: a misspelt field is caught.
    const typo = structuredClone(objects.find((d) => d.obj['kind'] === 'Deployment')!);
    typo.obj['spec']['template']['spec']['containers'][0]['readinesProbe'] = { httpGet: { path: '/ready', port: 'http' } };
    expect(strictCheck([typo]).join('\n')).toMatch(/readinesProbe/);
  });

  it('renders the kustomization: every listed file exists and is valid, and every manifest is listed somewhere', () => {
    const rendered = build(join(K8S, 'kustomization.yaml'));
    const adapter = build(join(K8S, 'prometheus-adapter', 'kustomization.yaml'));
    expect(rendered.length).toBeGreaterThanOrEqual(10);
    const names = rendered.map((o) => `${o['kind']}/${o['metadata']['name']}`);
    expect(new Set(names).size, `duplicates in ${names.join(', ')}`).toBe(names.length);
    for (const o of rendered) if (o['kind'] !== 'Namespace') expect(o['metadata']['namespace'], `${o['kind']}/${o['metadata']['name']}`).toBe('switchyard');
    // Every manifest is part of a kustomization, except the ones kept under optional/.
    const listed = new Set<string>();
    const walk = (file: string) => {
      const k = parseYaml(readFileSync(file, 'utf8')) as Obj;
      for (const r of k['resources'] as string[]) {
        const path = join(dirname(file), r);
        if (statSync(path).isDirectory()) walk(join(path, 'kustomization.yaml'));
        else listed.add(relative(ROOT, path));
      }
    };
    walk(join(K8S, 'kustomization.yaml'));
    walk(join(K8S, 'prometheus-adapter', 'kustomization.yaml'));
    for (const d of objects) if (!d.file.startsWith('k8s/optional/')) expect(listed, `${d.file} is in no kustomization`).toContain(d.file);
    expect(adapter.map((o) => o['kind'])).toEqual(['ConfigMap']);
    // The image placeholder is replaced.
    for (const o of rendered) for (const pod of podSpecs(o)) for (const c of pod['containers']) expect(c['image']).toMatch(/^registry\.example\.com\/switchyard:/);
  });

  it('fits together: references, selectors, probes, drain timing, GPUs, the HPA metric and its adapter rule', () => {
    const objs = build(join(K8S, 'kustomization.yaml'));
    const config = find(objs, 'ConfigMap', 'switchyard-config')!;
    const secret = find(objs, 'Secret', 'switchyard-secrets')!;
    const edge = find(objs, 'Deployment', 'switchyard-edge')!;
    const runner = find(objs, 'Deployment', 'switchyard-runner')!;
    expect(config && secret && edge && runner).toBeTruthy();

    // Every setting in the ConfigMap and Secret is one the edge or the runner reads, and the
    // ConfigMap's values parse as those settings.
    const settings = new Map([...Object.values(edgeSettings), ...Object.values(runnerSettings)].map((s) => [s.env, s] as const));
    for (const [key, value] of Object.entries(config['data'] as Record<string, string>)) {
      expect(settings.has(key), `ConfigMap key ${key} is not a setting`).toBe(true);
      expect(() => settings.get(key)!.parse(value), key).not.toThrow();
    }
    for (const key of Object.keys(secret['stringData'])) expect(settings.has(key), `Secret key ${key} is not a setting`).toBe(true);
    expect(Object.keys(secret['stringData'])).toEqual(expect.arrayContaining(['JWT_SECRET', 'REDIS_URL']));
    expect(Object.keys(config['data'])).toEqual(expect.arrayContaining(['KAFKA_SERVERS', 'DRAIN_TIMEOUT_MS']));

    for (const d of [edge, runner]) {
      const pod = d['spec']['template']['spec'];
      const labels = d['spec']['template']['metadata']['labels'];
      expect(Object.keys(d['spec']['selector']['matchLabels']).length).toBeGreaterThan(0);
      for (const [k, v] of Object.entries(d['spec']['selector']['matchLabels'])) expect(labels[k]).toBe(v);
      expect(find(objs, 'ServiceAccount', pod['serviceAccountName'])).toBeDefined();
      expect(pod['securityContext']).toMatchObject({ runAsNonRoot: true, runAsUser: expect.any(Number) });
      const c = pod['containers'][0];
      expect(c['securityContext']).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
      for (const from of c['envFrom']) {
        if (from['configMapRef']) expect(find(objs, 'ConfigMap', from['configMapRef']['name'])).toBeDefined();
        if (from['secretRef']) expect(find(objs, 'Secret', from['secretRef']['name'])).toBeDefined();
      }
      expect(c['resources']['requests']).toMatchObject({ cpu: expect.anything(), memory: expect.anything() });
      const pdb = objs.find((o) => o['kind'] === 'PodDisruptionBudget' && Object.entries(o['spec']['selector']['matchLabels']).every(([k, v]) => labels[k] === v));
      expect(pdb, `a PodDisruptionBudget for ${d['metadata']['name']}`).toBeDefined();
    }

    // The edge: WORKER_ID from the pod name, /ready and /health probes on its port, a preStop
    // pause, and a grace period above preStop + DRAIN_TIMEOUT_MS.
    const pod = edge['spec']['template']['spec'];
    const c = pod['containers'][0];
    expect(c['args']).toEqual(['edge']);
    expect(c['env']).toContainEqual({ name: 'WORKER_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
    expect(c['readinessProbe']['httpGet']).toMatchObject({ path: '/ready' });
    expect(c['livenessProbe']['httpGet']).toMatchObject({ path: '/health' });
    const port = c['ports'].find((p: Obj) => p['name'] === c['readinessProbe']['httpGet']['port']);
    expect(port['containerPort']).toBe(Number(config['data']['PORT']));
    const preStop = c['lifecycle']['preStop']['exec']['command'] as string[];
    expect(preStop[0]).toBe('sleep');
    const preStopS = Number(preStop[1]);
    expect(preStopS).toBeGreaterThan(0);
    expect(pod['terminationGracePeriodSeconds'] * 1000).toBeGreaterThan(preStopS * 1000 + Number(config['data']['DRAIN_TIMEOUT_MS']));
    expect(pod['affinity']['podAntiAffinity']).toBeDefined();
    expect(JSON.stringify(pod['affinity']['podAntiAffinity'])).toContain('kubernetes.io/hostname');

    // Services select the edge pods and target its named port.
    for (const svc of objs.filter((o) => o['kind'] === 'Service')) {
      for (const [k, v] of Object.entries(svc['spec']['selector'])) expect(edge['spec']['template']['metadata']['labels'][k]).toBe(v);
      expect(svc['spec']['ports'][0]['targetPort']).toBe('http');
    }

    // The runner asks for a GPU, with RUNNER_ID from the pod name and probes on its port.
    const rc = runner['spec']['template']['spec']['containers'][0];
    expect(rc['args']).toEqual(['runner']);
    expect(rc['resources']['limits']['nvidia.com/gpu']).toBe('1');
    expect(rc['env']).toContainEqual({ name: 'RUNNER_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
    expect(rc['ports'][0]['containerPort']).toBe(Number(config['data']['RUNNER_PORT']));

    // The HPA scales the edge Deployment on switchyard_connections per pod and on CPU; the
    // adapter rule serves exactly that metric name from the series the edges export.
    const hpa = find(objs, 'HorizontalPodAutoscaler', 'switchyard-edge')!;
    expect(hpa['spec']['scaleTargetRef']).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'switchyard-edge' });
    const podsMetric = hpa['spec']['metrics'].find((m: Obj) => m['type'] === 'Pods');
    expect(podsMetric['pods']['metric']['name']).toBe('switchyard_connections');
    expect(Number(podsMetric['pods']['target']['averageValue'])).toBeLessThan(Number(config['data']['MAX_TOTAL_CONNECTIONS']));
    expect(hpa['spec']['metrics'].find((m: Obj) => m['type'] === 'Resource')['resource']['name']).toBe('cpu');
    const adapterCm = build(join(K8S, 'prometheus-adapter', 'kustomization.yaml'))[0]!;
    const helmValues = parseYaml(readFileSync(join(K8S, 'prometheus-adapter', 'values-prometheus-adapter.yaml'), 'utf8')) as Obj;
    for (const rules of [(parseYaml(adapterCm['data']['config.yaml']) as Obj)['rules'], helmValues['rules']['custom']] as Obj[][]) {
      const rule = rules.find((r) => r['name']?.['as'] === 'switchyard_connections');
      expect(rule).toBeDefined();
      expect(rule!['seriesQuery']).toContain('switchyard_connections');
      expect(rule!['resources']['overrides']['pod']).toEqual({ resource: 'pod' });
      expect(rule!['metricsQuery']).toContain('<<.Series>>');
    }
  });
});

/** The TypeScript types of `kubernetes-models` (generated from the same OpenAPI schema). */
function strictCheck(docs: Doc[]): string[] {
  const file = join(ROOT, 'test', 'deploy', '__k8s_strict_check__.ts');
  // One `import type { IKind as Tn }` per model, then one typed constant per object; the
  // first line of each constant maps a diagnostic back to its manifest.
  const imports = new Map<string, string>();
  for (const d of docs) {
    const key = modelPath(d.obj['apiVersion'], d.obj['kind']);
    if (!imports.has(key)) imports.set(key, `T${imports.size}`);
  }
  const lines = [...imports].map(([key, alias]) => `import type { I${key.split('/').pop()} as ${alias} } from '${key}';`);
  const owners: { line: number; doc: Doc }[] = [];
  docs.forEach((d, i) => {
    owners.push({ line: lines.length, doc: d });
    const text = `export const m${i}: ${imports.get(modelPath(d.obj['apiVersion'], d.obj['kind']))} = ${JSON.stringify(d.obj, null, 2)};`;
    lines.push(...text.split('\n'));
  });
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => (name === file ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => (name === file ? source : readFile(name));
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((diag) => {
    const message = ts.flattenDiagnosticMessageText(diag.messageText, '\n');
    if (diag.file?.fileName !== file || diag.start === undefined) return message;
    const at = diag.file.getLineAndCharacterOfPosition(diag.start).line;
    const owner = [...owners].reverse().find((o) => o.line <= at);
    return `${owner ? docName(owner.doc) : '?'}: ${message}`;
  });
}
