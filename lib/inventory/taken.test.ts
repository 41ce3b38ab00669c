import assert from "node:assert/strict";
import { symlink } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { BbError } from "../errors.ts";
import { bottleLabels, encodeLabelValue, type ContainerSummary, type NetworkSummary } from "../docker/index.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import type { DockerSource } from "./collect.ts";
import { refuseSlugElsewhere, slugElsewhere } from "./taken.ts";

/** Docker holding one egress network per labels set (named as bot-bottle names it), and
 * the given containers, answering only for the slug asked about. */
function engine(labelSets: Record<string, string>[], containers: ContainerSummary[] = []): DockerSource {
  const networks = labelSets.map((labels, i) => ({ id: `n${i}`, name: `bb-${labels["bot-bottle.slug"]}-egress`, driver: "bridge", internal: false, createdAt: "", labels }) satisfies NetworkSummary);
  const matching = <T extends { labels: Record<string, string> }>(items: T[], filter: Record<string, string | undefined>) =>
    items.filter((x) => Object.entries(filter).every(([k, v]) => x.labels[k] === v));
  return { listContainers: async (filter) => matching(containers, filter), listNetworks: async (filter) => matching(networks, filter), listVolumes: async () => [] };
}
const of = (slug: string, stateRoot: string | null) => bottleLabels({ slug, backend: "docker", agent: "shell", stateRoot, role: "network-egress" });

test("slugElsewhere() names another state root holding the slug, and not this one (reached through a link too), an unlabelled one or another slug", async (t) => {
  const here = await tempDir(t);
  const link = join(await tempDir(t), "link");
  await symlink(here, link);
  const other = "/srv/other,root";
  assert.equal(await slugElsewhere({ slug: "dup", stateRoot: here, docker: engine([of("dup", other)]) }), other, "the label's encoded comma is decoded");
  assert.equal(await slugElsewhere({ slug: "dup", stateRoot: here, docker: engine([of("dup", link), of("dup", null), of("other", other)]) }), null);
  assert.equal(of("dup", other)["bot-bottle.state-root"], encodeLabelValue(other));
});

test("refuseSlugElsewhere() throws SLUG_TAKEN naming the slug and the root; with engineOptional a docker that cannot answer is no answer", async (t) => {
  const here = await tempDir(t);
  await assert.rejects(refuseSlugElsewhere({ slug: "dup", stateRoot: here, docker: engine([of("dup", "/srv/a")]) }), (e: BbError) => {
    assert.equal(e.code, "SLUG_TAKEN");
    assert.equal(e.exitCode, 1);
    assert.match(e.message, /^Slug dup is taken by a bottle of state root \/srv\/a .*nothing was made/);
    assert.deepEqual(e.details, { slug: "dup", stateRoot: "/srv/a" });
    return true;
  });
  const down: DockerSource = { listContainers: () => Promise.reject(new BbError("DOCKER", "Cannot reach the Docker engine")), listNetworks: async () => [], listVolumes: async () => [] };
  await refuseSlugElsewhere({ slug: "dup", stateRoot: here, docker: down, engineOptional: true });
  await assert.rejects(refuseSlugElsewhere({ slug: "dup", stateRoot: here, docker: down }), /Cannot reach the Docker engine/);
});

test("slugElsewhere() takes no slug for a container carrying another root's labels under a name bot-bottle does not give (one run from an image committed from that bottle)", async (t) => {
  const here = await tempDir(t);
  const labels = bottleLabels({ slug: "dup", backend: "docker", agent: "shell", stateRoot: "/srv/other", role: "agent" });
  const container = (name: string): ContainerSummary => ({ id: name, name, image: "x", state: "running", status: "Up", createdAt: "", labels });
  assert.equal(await slugElsewhere({ slug: "dup", stateRoot: here, docker: engine([], [container("my-db")]) }), null);
  assert.equal(await slugElsewhere({ slug: "dup", stateRoot: here, docker: engine([], [container("bb-dup-agent")]) }), "/srv/other");
});
