// Environment names a bottle or agent may not set in the agent (in `env`, or as a route's
// placeholder name): bot-bottle sets them itself (lib/vm/env.ts), or they decide which
// program or code runs when a command in the bottle starts, or where its traffic goes and
// which CA it trusts. Set from a manifest they would change how every command in the
// bottle runs (root's included) or break the bottle, so they are refused as it is read.

const RESERVED: readonly [RegExp, string][] = [
  [
    /^(PATH|LD_.*|BASH_ENV|ENV|NODE_OPTIONS|GIT_CONFIG.*|GIT_EXEC_PATH|GIT_SSH.*|GIT_ASKPASS|GIT_PROXY_COMMAND)$/,
    "it decides which programs or code run when a command in the bottle starts",
  ],
  [/^(HOME|USER|SHELL)$/, "the agent's user, home and shell are the bottle's own (bot-bottle sets HOME and USER)"],
  [/^(HTTP_PROXY|HTTPS_PROXY|NO_PROXY|ALL_PROXY)$/i, "bot-bottle sets the proxy: the firewall is the bottle's only way out"],
  [
    /^(NODE_EXTRA_CA_CERTS|CODEX_CA_CERTIFICATE|SSL_CERT_FILE|SSL_CERT_DIR|GIT_SSL_CAINFO|REQUESTS_CA_BUNDLE)$/,
    "it decides which CA the bottle trusts, and bot-bottle points that at the bottle's own",
  ],
  [/^BB_/, "BB_ names are bot-bottle's own"],
];

/** Why `name` may not be set in the agent's environment, or null when it may. */
export function reservedEnvReason(name: string): string | null {
  return RESERVED.find(([re]) => re.test(name))?.[1] ?? null;
}
