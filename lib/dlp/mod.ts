// DLP: find credentials in outgoing text. Used by the firewall and git-gate.
export { createScanner, type Finding, type Scanner, type ScannerOptions } from "./scanner.ts";
