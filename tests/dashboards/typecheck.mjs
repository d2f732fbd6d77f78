// typecheck.mjs - turn a Grafana dashboard JSON into TypeScript that tsc
// checks against @grafana/schema, Grafana's own published types.
//
// Grafana loads a dashboard with a wrong field type without a word and then
// shows an empty or broken panel; a JSON file is not checked by anything
// else.  The whole dashboard is typed as Dashboard, and each panel once more
// with the Options and FieldConfig of its panel plugin (timeseries, stat,
// heatmap, ...), because Dashboard types a panel's options only as a record.
// A panel type without a schema here is an error, so a new panel is never
// silently unchecked.
//
// The schema declares enumerations as TypeScript enums, which JSON strings
// can never be; Json<T> turns each into the union of its values, which is
// exactly what the JSON may hold.
//
// With a third argument, a JSON list of mutations ({"path": [...], "value":
// ...}), each mutated copy is added on one line under @ts-expect-error: tsc
// then also fails if any of them type-checks, which proves the check can
// fail at all.
//
// usage: node typecheck.mjs <dashboard.json> <out.ts> [mutations.json]
import { readFileSync, writeFileSync } from 'node:fs';

const [, , input, output, mutationsFile] = process.argv;
const dashboard = JSON.parse(readFileSync(input, 'utf8'));

// Panel plugin -> the module of its generated schema types, and whether it
// has a custom field config of its own.
const schemas = {
  timeseries: ['timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen', true],
  stat: ['stat/panelcfg/x/StatPanelCfg_types.gen', false],
  heatmap: ['heatmap/panelcfg/x/HeatmapPanelCfg_types.gen', true],
  text: ['text/panelcfg/x/TextPanelCfg_types.gen', false],
  table: ['table/panelcfg/x/TablePanelCfg_types.gen', true],
  gauge: ['gauge/panelcfg/x/GaugePanelCfg_types.gen', false],
  bargauge: ['bargauge/panelcfg/x/BarGaugePanelCfg_types.gen', false],
};

const lines = [
  "import type { Dashboard, Panel, RowPanel } from '@grafana/schema';",
];
for (const [type, [mod]] of Object.entries(schemas)) {
  lines.push(`import type * as ${type}_cfg from '@grafana/schema/dist/esm/raw/composable/${mod}';`);
}
lines.push(
  '',
  '// JSON can hold an enum\'s values, never the enum type itself.',
  'type Json<T> = T extends string ? `${T}`',
  '  : T extends number | boolean | null | undefined ? T',
  '  : T extends Array<infer U> ? Array<Json<U>>',
  '  : T extends object ? { [K in keyof T]: Json<T[K]> }',
  '  : T;',
  '// A panel whose options and field config are its plugin\'s.',
  "type PluginPanel<O, F> = Omit<Panel<Record<string, unknown>, F>, 'options'> & { options: O };",
  '',
  `export const dashboard: Json<Dashboard> = ${JSON.stringify(dashboard, null, 2)};`,
  '',
);

let n = 0;
let failed = false;
function panel(p, where) {
  const name = `panel_${n++}`;
  if (p.type === 'row') {
    lines.push(`export const ${name}: Json<RowPanel> = ${JSON.stringify(p, null, 2)};`);
    (p.panels || []).forEach((q, i) => panel(q, `${where}.panels[${i}]`));
    return;
  }
  if (!schemas[p.type]) {
    console.error(`${input}: ${where} ("${p.title}") is a ${p.type} panel: no schema to check it against (add it to typecheck.mjs)`);
    failed = true;
    return;
  }
  lines.push(`// ${where}: ${p.title}`);
  const custom = schemas[p.type][1] ? `${p.type}_cfg.FieldConfig` : 'Record<string, unknown>';
  lines.push(`export const ${name}: Json<PluginPanel<${p.type}_cfg.Options, ${custom}>> = ${JSON.stringify(p, null, 2)};`);
}
(dashboard.panels || []).forEach((p, i) => panel(p, `panels[${i}]`));

function panelType(p) {
  if (p.type === 'row') return 'Json<RowPanel>';
  const custom = schemas[p.type][1] ? `${p.type}_cfg.FieldConfig` : 'Record<string, unknown>';
  return `Json<PluginPanel<${p.type}_cfg.Options, ${custom}>>`;
}
if (mutationsFile) {
  JSON.parse(readFileSync(mutationsFile, 'utf8')).forEach((m, i) => {
    const copy = JSON.parse(JSON.stringify(dashboard));
    let o = copy;
    for (const k of m.path.slice(0, -1)) o = o[k];
    o[m.path[m.path.length - 1]] = m.value;
    // The smallest typed unit that holds the change: its panel, or the
    // dashboard.
    const inPanel = m.path[0] === 'panels' && m.path.length > 2;
    const unit = inPanel ? copy.panels[m.path[1]] : copy;
    const type = inPanel ? panelType(unit) : 'Json<Dashboard>';
    lines.push(`// must fail: ${m.path.join('.')} = ${JSON.stringify(m.value)}`);
    lines.push('// @ts-expect-error');
    lines.push(`export const mutated_${i}: ${type} = ${JSON.stringify(unit)};`);
  });
}
writeFileSync(output, lines.join('\n') + '\n');
process.exit(failed ? 1 : 0);
