// `node --import` this to install sdk-load-hooks.mjs.
import { register } from "node:module";

register("./sdk-load-hooks.mjs", import.meta.url);
