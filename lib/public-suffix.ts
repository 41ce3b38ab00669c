// Public suffixes (co.uk, github.io, s3.amazonaws.com): names under which anyone can
// register their own site, from the Public Suffix List (ICANN and private sections, as
// bundled by tldts). A "*.co.uk" firewall rule is not one organisation's subdomains but
// every registrant's, which is an open door for exfiltration: the agent's own requests
// must never get one, and an operator writing one is told what it means.
import { getPublicSuffix } from "tldts";

/** For "*.S" where S is itself a public suffix, S; for any other host, null. */
export function publicSuffixUnderWildcard(host: string): string | null {
  if (!host.startsWith("*.")) return null;
  const bare = host.slice(2);
  return getPublicSuffix(bare, { allowPrivateDomains: true }) === bare ? bare : null;
}
