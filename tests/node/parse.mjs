// Parses workflows and action.yml files with GitHub's own parser, @actions/workflow-parser.
//
//   node parse.mjs [--action | --workflow] FILE...
//
// A file named action.yml or action.yaml is read as an action, any other as a workflow, unless a flag says which.
// Prints one line per error, `path:line:col: message`, and exits 1 if there was any, 0 otherwise.
import { registerHooks } from "node:module";
import { readFileSync } from "node:fs";
import { basename } from "node:path";

// The published package imports its schema JSON without `with { type: "json" }`, which Node's ESM loader refuses
// (ERR_IMPORT_ATTRIBUTE_MISSING, actions/languageservices#387). Mark the package's own .json files as JSON.
registerHooks({
  load(url, context, nextLoad) {
    if (url.includes("/node_modules/@actions/") && url.endsWith(".json")) {
      return nextLoad(url, { ...context, importAttributes: { ...context.importAttributes, type: "json" } });
    }
    return nextLoad(url, context);
  },
});

const { parseWorkflow, convertWorkflowTemplate, NoOperationTraceWriter } = await import("@actions/workflow-parser");
const { parseAction, convertActionTemplate } = await import("@actions/workflow-parser/actions/index");

async function errorsOf(path, kind) {
  const file = { name: path, content: readFileSync(path, "utf8") };
  const trace = new NoOperationTraceWriter();
  if (kind === "action") {
    const parsed = parseAction(file, trace);
    if (parsed.value) convertActionTemplate(parsed.context, parsed.value);
    return parsed.context.errors.getErrors();
  }
  const parsed = parseWorkflow(file, trace);
  if (parsed.value) await convertWorkflowTemplate(parsed.context, parsed.value);
  return parsed.context.errors.getErrors();
}

function line(path, error) {
  const message = error.rawMessage.replace(/\s*\n\s*/g, " ");
  if (error.range) return `${path}:${error.range.start.line}:${error.range.start.column}: ${message}`;
  if (error.prefix && error.prefix !== path) return `${error.prefix}: ${message}`;
  return `${path}: ${message}`;
}

let kind;
let failed = false;
const paths = [];
for (const arg of process.argv.slice(2)) {
  if (arg === "--action" || arg === "--workflow") kind = arg.slice(2);
  else paths.push(arg);
}
if (paths.length === 0) {
  console.error("usage: node parse.mjs [--action | --workflow] FILE...");
  process.exit(2);
}
for (const path of paths) {
  const fileKind = kind ?? (/^action\.ya?ml$/.test(basename(path)) ? "action" : "workflow");
  for (const error of await errorsOf(path, fileKind)) {
    console.log(line(path, error));
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
