#!/usr/bin/env node
// validate_k8s.js - checks rendered Kubernetes manifests (the output of
// `kubectl kustomize k8s/overlays/X`) without a cluster.
//
//   node validate_k8s.js FILE.yaml [--same-pods OTHER.yaml]
//
// Every object must have a current API version (the list below), a kind the
// Kubernetes schema knows (kubernetes-models, generated from the API's
// OpenAPI document) and pass that schema's validation: a wrong type, a
// missing required field or an unknown kind is an error.  On top of the
// schema, what the API server or the kubelet would only find at apply time:
//   - every ConfigMap, Secret and key a pod refers to exists in the same
//     namespace (kustomize's generated names with a hash suffix included);
//   - a workload's selector matches its pod template's labels, and every
//     Service selects some pod template;
//   - every container states CPU and memory requests and limits;
//   - every namespaced object has the one namespace of the rendering.
// --same-pods OTHER: each Job's pod template must equal the Deployment of
// the same name in OTHER (the Deployment variant), restartPolicy aside.
//
// Prints one line per problem and a summary; exits 1 if any.
"use strict";
const fs = require("fs");
const path = require("path");
const yaml = require("js-yaml");

// Current API versions (GA, not deprecated) of the kinds a deployment of
// this project may use.
const CURRENT = new Set([
  "v1", "apps/v1", "batch/v1", "networking.k8s.io/v1", "policy/v1",
  "rbac.authorization.k8s.io/v1", "autoscaling/v2", "scheduling.k8s.io/v1",
  "storage.k8s.io/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1",
]);

function load(file) {
  return yaml.loadAll(fs.readFileSync(file, "utf8")).filter((d) => d !== null && d !== undefined);
}

function modelClass(apiVersion, kind) {
  const mod = "kubernetes-models/" + apiVersion; // "v1", "apps/v1", "batch/v1", ...
  let m;
  try {
    m = require(mod);
  } catch (e) {
    return { error: `unknown apiVersion ${apiVersion} (no module ${mod})` };
  }
  const C = m[kind];
  if (typeof C !== "function" || C.kind !== kind || C.apiVersion !== apiVersion) {
    return { error: `unknown kind ${kind} in ${apiVersion}` };
  }
  return { C };
}

function podSpecOf(o) {
  if (["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"].includes(o.kind)) {
    return o.spec && o.spec.template && o.spec.template.spec;
  }
  if (o.kind === "CronJob") return o.spec?.jobTemplate?.spec?.template?.spec;
  if (o.kind === "Pod") return o.spec;
  return null;
}

function check(objects, file, problems) {
  const id = (o) => `${o.kind || "?"}/${o.metadata?.name || "?"}`;
  const byNs = {};
  for (const o of objects) {
    if (typeof o !== "object" || !o.apiVersion || !o.kind) {
      problems.push(`${file}: an object without apiVersion/kind: ${JSON.stringify(o).slice(0, 80)}`);
      continue;
    }
    if (!CURRENT.has(o.apiVersion)) {
      problems.push(`${file}: ${id(o)}: ${o.apiVersion} is not a current API version`);
    }
    const { C, error } = modelClass(o.apiVersion, o.kind);
    if (error) {
      problems.push(`${file}: ${id(o)}: ${error}`);
      continue;
    }
    try {
      new C(o).validate();
    } catch (e) {
      problems.push(`${file}: ${id(o)}: schema: ${String(e.message || e).split("\n").slice(0, 6).join("; ")}`);
    }
    const ns = o.metadata?.namespace || "";
    (byNs[ns] = byNs[ns] || []).push(o);
  }
  // One rendering is one deployment: every namespaced object in one
  // namespace (an object without one would land in kubectl's current one).
  const CLUSTER = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass",
    "StorageClass", "PersistentVolume", "CustomResourceDefinition"]);
  for (const o of objects) {
    if (o && o.kind && !CLUSTER.has(o.kind) && !o.metadata?.namespace) {
      problems.push(`${file}: ${id(o)}: no namespace`);
    }
  }
  const spaces = Object.keys(byNs).filter((n) => n !== "");
  if (spaces.length > 1) problems.push(`${file}: objects in several namespaces: ${spaces.join(", ")}`);
  for (const [ns, objs] of Object.entries(byNs)) {
    const cms = new Map(objs.filter((o) => o.kind === "ConfigMap" && o.apiVersion === "v1")
      .map((o) => [o.metadata.name, new Set(Object.keys({ ...o.data, ...o.binaryData }))]));
    const secrets = new Map(objs.filter((o) => o.kind === "Secret" && o.apiVersion === "v1")
      .map((o) => [o.metadata.name, new Set(Object.keys({ ...o.data, ...o.stringData }))]));
    const ref = (o, what, map, name, key, optional) => {
      if (optional) return;
      if (!map.has(name)) problems.push(`${file}: ${id(o)}: ${what} ${name} does not exist in namespace "${ns}"`);
      else if (key !== undefined && !map.get(name).has(key)) {
        problems.push(`${file}: ${id(o)}: ${what} ${name} has no key ${key}`);
      }
    };
    const templates = [];
    for (const o of objs) {
      const spec = podSpecOf(o);
      if (!spec) continue;
      templates.push({ o, labels: (o.kind === "Pod" ? o.metadata.labels : o.spec.template?.metadata?.labels) || {} });
      const containers = [...(spec.initContainers || []), ...(spec.containers || [])];
      for (const c of containers) {
        for (const ef of c.envFrom || []) {
          if (ef.configMapRef) ref(o, "ConfigMap", cms, ef.configMapRef.name, undefined, ef.configMapRef.optional);
          if (ef.secretRef) ref(o, "Secret", secrets, ef.secretRef.name, undefined, ef.secretRef.optional);
        }
        for (const e of c.env || []) {
          const v = e.valueFrom || {};
          if (v.configMapKeyRef) ref(o, "ConfigMap", cms, v.configMapKeyRef.name, v.configMapKeyRef.key, v.configMapKeyRef.optional);
          if (v.secretKeyRef) ref(o, "Secret", secrets, v.secretKeyRef.name, v.secretKeyRef.key, v.secretKeyRef.optional);
        }
        const r = c.resources || {};
        for (const k of ["requests", "limits"]) {
          for (const res of ["cpu", "memory"]) {
            if (!r[k] || r[k][res] === undefined) {
              problems.push(`${file}: ${id(o)}: container ${c.name} has no ${res} ${k}`);
            }
          }
        }
      }
      for (const v of spec.volumes || []) {
        if (v.configMap) {
          ref(o, "ConfigMap", cms, v.configMap.name, undefined, v.configMap.optional);
          for (const it of v.configMap.items || []) ref(o, "ConfigMap", cms, v.configMap.name, it.key, v.configMap.optional);
        }
        if (v.secret) {
          ref(o, "Secret", secrets, v.secret.secretName, undefined, v.secret.optional);
          for (const it of v.secret.items || []) ref(o, "Secret", secrets, v.secret.secretName, it.key, v.secret.optional);
        }
      }
      const sel = o.spec?.selector?.matchLabels;
      if (o.kind !== "Job" && o.kind !== "Pod" && o.kind !== "CronJob") {
        const labels = o.spec.template?.metadata?.labels || {};
        if (!sel || !Object.entries(sel).every(([k, v]) => labels[k] === v)) {
          problems.push(`${file}: ${id(o)}: selector ${JSON.stringify(sel)} does not match the pod template's labels`);
        }
      }
    }
    for (const s of objs.filter((o) => o.kind === "Service" && o.spec?.selector)) {
      const sel = s.spec.selector;
      if (!templates.some((t) => Object.entries(sel).every(([k, v]) => t.labels[k] === v))) {
        problems.push(`${file}: ${id(s)}: selects no pod template (${JSON.stringify(sel)})`);
      }
    }
  }
}

function samePods(objects, other, file, problems) {
  const deps = new Map(load(other).filter((o) => o.kind === "Deployment").map((o) => [o.metadata.name, o]));
  for (const j of objects.filter((o) => o.kind === "Job")) {
    const d = deps.get(j.metadata.name);
    if (!d) {
      problems.push(`${file}: Job/${j.metadata.name}: no Deployment of that name in ${other}`);
      continue;
    }
    const a = { ...j.spec.template.spec };
    const b = { ...d.spec.template.spec };
    delete a.restartPolicy;
    delete b.restartPolicy;
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      problems.push(`${file}: Job/${j.metadata.name}: pod template differs from Deployment/${d.metadata.name} in ${other}`);
    }
  }
}

function main() {
  const args = process.argv.slice(2);
  const i = args.indexOf("--same-pods");
  const other = i >= 0 ? args.splice(i, 2)[1] : null;
  if (args.length !== 1) {
    console.error("usage: validate_k8s.js FILE.yaml [--same-pods OTHER.yaml]");
    process.exit(2);
  }
  const file = args[0];
  const problems = [];
  let objects;
  try {
    objects = load(file);
  } catch (e) {
    console.log(`FAIL ${file}: not YAML: ${e.message}`);
    process.exit(1);
  }
  if (objects.length === 0) problems.push(`${file}: no objects`);
  check(objects, file, problems);
  if (other) samePods(objects, other, file, problems);
  for (const p of problems) console.log(`FAIL ${p}`);
  const kinds = {};
  for (const o of objects) kinds[o.kind] = (kinds[o.kind] || 0) + 1;
  const summary = Object.entries(kinds).map(([k, n]) => `${n} ${k}`).join(", ");
  console.log(`${problems.length ? "FAIL" : "ok  "} ${path.basename(file)}: ${objects.length} objects (${summary})` +
    (problems.length ? `, ${problems.length} problems` : ""));
  process.exit(problems.length ? 1 : 0);
}

main();
