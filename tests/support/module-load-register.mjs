// `node --import` this to install module-load-hooks.mjs, watching the modules named in
// $BB_TEST_WATCH_MODULES: JSON {"<name>": "<part of the module URL>", ...}.
import { register } from "node:module";
import process from "node:process";

register("./module-load-hooks.mjs", import.meta.url, { data: JSON.parse(process.env.BB_TEST_WATCH_MODULES ?? "{}") });
