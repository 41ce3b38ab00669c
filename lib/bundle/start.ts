// bb-bundle's work: mint the bottle CA, create the bottle's networks, start the sidecar
// bundle with only this bottle's daemons, wait until each answers, and record where the
// agent must dial. Everything created is labelled and undone if a later step fails or
// the tool is interrupted.
//
// docker:        agent + bundle on an --internal network (bundle aliases firewall,
//                git-gate, supervise); bundle alone on the egress network.
// smolmachines:  bundle on a per-bottle bridge, agent-facing ports published on the
//                bottle's loopback address; the VM's allowlist is exactly that address.
import { existsSync } from "node:fs";
import { writeFileAtomic } from "../fs-atomic.ts";
import { dirWithMode } from "../paths.ts";
import { join } from "node:path";
import process from "node:process";
import { BbError } from "../errors.ts";
import { log } from "../log.ts";
import { bottleLabels, LABEL, type Role } from "../docker/labels.ts";
import { createVolume, volumeLabels } from "../docker/volume.ts";
import { createNetwork, removeNetwork, connectNetwork } from "../docker/network.ts";
import { BOTTLE_LOG_LIMIT, BUNDLE_MEMORY_MIB, isNameInUse, PIDS_LIMIT, removeContainer, runContainer, type Mount } from "../docker/container.ts";
import { hostPort } from "../docker/inspect.ts";
import { AGENT_FACING, BUNDLE_PATHS, daemonIds, names, PORTS } from "../layout.ts";
import type { BundleSection, Plan, Service } from "../plan/schema.ts";
import { localUpstreamPath } from "../prepare/files.ts";
import { firewallBlockedDir } from "./blocked-dir.ts";
import { caKeyEnv, stageBottleCa } from "./ca.ts";
import { identityEnv } from "./identity.ts";
import { AGENT_KEY_FILE, bottleAgentKey } from "./agent-key.ts";
import { AGENT_KEY_ENV } from "../http/agent-key.ts";
import { awaitBundle } from "./readiness.ts";
import { bundleSecrets } from "./secrets.ts";
import { checkAbort, Undo } from "./undo.ts";
import { shareQueueDir } from "../supervise/queue.ts";

interface BundleOptions {
  /** Ensures the sidecar image exists and returns its reference. */
  sidecarImage: () => Promise<string>;
  hostEnv: Record<string, string | undefined>;
  /** Real credentials by slot, from forward_host_credentials (else host env by tokenEnv). */
  credentials?: Record<string, string>;
  /** Extra CA certificates (PEM text) the bundle trusts for upstream TLS: corporate
   * proxies, tests. The text the caller read and checked (bb-bundle --upstream-ca), not
   * its file again: that may have been replaced since, by a FIFO even. */
  upstreamCaPem?: string;
  /** Host address to publish agent-facing ports on (smolmachines). */
  loopbackAddr?: string;
  readyTimeoutMs?: number;
  /** Return once the bundle is started, without waiting for its daemons; the caller must
   * call awaitBundle before anything talks to them (the start flow does so in
   * bb-provision, so the agent container starts while the daemons come up). */
  noWait?: boolean;
  /** Extra labels on everything created (tests add bot-bottle.test=1). */
  extraLabels?: Record<string, string>;
  signal?: AbortSignal;
  /** The caller's last steps before its plan goes out (bb-bundle: saving it, then
   * lib/cli.ts's lastStop), given the bundled plan: what fails or is interrupted there
   * undoes the start as any step's failure does, so a plan that never went out leaves no
   * bundle behind. */
  handOver?: (bundled: Plan) => Promise<void>;
  now?: () => Date;
}

function hostUser(): { uid: number; gid: number } | undefined {
  return typeof process.getuid === "function" ? { uid: process.getuid(), gid: process.getgid!() } : undefined;
}

/**
 * git-gate's store (its mirrors, known hosts and git config): a named volume of the
 * bottle's, kept across its restarts (a resumed bottle does not clone again) and removed
 * with it by bb-cleanup. Not a folder of the bottle's: git-gate's uid, not yours, owns its
 * data (init makes its folder in the volume: sidecar-image/init/store.ts), and no folder of
 * yours can be given to it when you are not root. Every daemon shares your group, and one
 * that could write git-gate's data could plant the mirror of a declared repo, whose config
 * git-gate then runs at the agent's next fetch, with the SSH key. A volume of that name
 * with other labels (another state root's bottle of this slug) is never used.
 */
async function gitGateVolume(plan: Plan, labels: Record<string, string>): Promise<string> {
  const name = names.gitGateVolume(plan.slug);
  await createVolume(name, labels); // an existing one is left as it is
  const found = (await volumeLabels(name)) ?? {};
  const mismatch = [LABEL.slug, LABEL.role, LABEL.stateRoot].find((k) => found[k] !== labels[k]);
  if (mismatch) {
    throw new BbError("BUNDLE", `Cannot start the bundle: volume ${name} exists, and it is not this bottle's git-gate store (its ${mismatch} label is ${JSON.stringify(found[mismatch] ?? null)}): remove it, or use another slug`);
  }
  return name;
}

/** file:// git upstreams: each host folder at the bundle path git-gate's config names
 * (lib/prepare/files.ts gitGateConfig), read-write, since pushes land there. */
function localUpstreamMounts(plan: Plan): Mount[] {
  return (plan.bottle.git?.upstreams ?? []).flatMap((u, i) => {
    if (!u.url.startsWith("file://")) return [];
    const source = localUpstreamPath(u.url);
    if (!existsSync(source)) throw new BbError("CONFIG", `Cannot start the bundle: git upstream ${u.host} is ${u.url}, and ${source} does not exist`);
    return [{ source, target: `${BUNDLE_PATHS.localUpstreams}/${i}` }];
  });
}

const PORT_OF: Record<(typeof AGENT_FACING)[number], number> = { firewall: PORTS.firewall, "git-gate": PORTS.gitGate, supervise: PORTS.supervise };

export async function startBundle(plan: Plan, opts: BundleOptions): Promise<Plan> {
  // The daemons read their files from the state dir: without it the bundle cannot start,
  // and docker's complaint about a bind source would say so 600 characters in.
  if (!existsSync(plan.files.firewallPolicy)) {
    throw new BbError(
      "STATE",
      `Cannot start the bundle for ${plan.slug}: its state dir ${plan.files.dir} is gone or incomplete (bb-cleanup removes bottles prepared and never started); run bb-prepare again`,
    );
  }
  const localMounts = localUpstreamMounts(plan); // before anything is created: it may refuse
  const undo = new Undo();
  const labels = (role: Role) => bottleLabels({ slug: plan.slug, backend: plan.backend, agent: plan.agent.name, stateRoot: plan.stateRoot, role, extra: opts.extraLabels });
  try {
    // The image is looked up (or built) while the CA and the networks are made.
    const imageLookup = opts.sidecarImage();
    imageLookup.catch(() => {}); // awaited below; a failure is thrown there, after undo is set up

    const secrets = bundleSecrets(plan, opts.hostEnv, opts.credentials);
    for (const w of secrets.warnings) log.warn(w);

    // Minted while the networks are made (the engine's work, not ours), and put in place
    // only once they are. Once placed it is the bottle's, kept whatever fails later (as
    // the state dir around it is): another run starting this bottle at once may be using
    // it, and bb-cleanup removes it with the bottle.
    const host = hostUser();
    const minting = stageBottleCa(plan.files.dir, plan.slug).then((staged) => {
      // The bottle's CA placed by an earlier run is no work of this one: nothing to undo.
      if (staged.minted) undo.push("remove the bottle CA minted for this start", () => staged.discard());
      return staged;
    });

    const docker = plan.backend === "docker";
    const internal = docker ? names.internalNet(plan.slug) : null;
    const egress = names.egressNet(plan.slug);
    log.step(`bundle: creating network${docker ? "s" : ""} for ${plan.slug}`);
    // Created side by side; each is registered for undo as soon as it exists, so a failure
    // of one still removes the other (and the CA, once minted).
    const made = (name: string, id: string) => {
      undo.push(`remove network ${name}`, () => removeNetwork(id, name));
      return id;
    };
    // One that exists already is another run's (this plan's bundle started before, say):
    // never ours to remove, and said as the bottle it is, not as docker's argv.
    const create = (name: string, internal: boolean, role: Role) =>
      createNetwork({ name, internal, labels: labels(role) }).then(
        (id) => made(name, id),
        (e: Error) => {
          if (/already exists/i.test(e.message)) {
            throw new BbError("BUNDLE", `Cannot start the bundle: network ${name} already exists, and this step did not make it: ${alreadyStarted(plan.slug)}, or something else holds the name`, { cause: e });
          }
          throw e;
        },
      );
    const internalId = internal && create(internal, true, "network-internal");
    const egressId = create(egress, false, "network-egress");
    const created = await Promise.allSettled([minting, internalId, egressId]);
    for (const r of created) if (r.status === "rejected") throw r.reason;
    // By ID from here on: two flows starting one slug at once can both make a network of
    // that name (docker allows it), and a name would then be ambiguous, or the other's.
    const networkIds = { internal: await internalId, egress: await egressId };
    const image = await imageLookup;
    checkAbort(opts.signal);
    const ca = await (await minting).place();

    const mounts: Mount[] = [
      { source: join(plan.files.dir, "firewall"), target: BUNDLE_PATHS.firewall, readOnly: true },
      // The certificate alone: the key goes to the firewall in its environment (caKeyEnv).
      { source: ca.cert, target: `${BUNDLE_PATHS.ca}/ca.pem`, readOnly: true },
      { source: await firewallBlockedDir(plan.files.dir, host), target: BUNDLE_PATHS.firewallBlocked },
    ];
    if (plan.files.egressRoutes) mounts.push({ source: join(plan.files.dir, "egress"), target: BUNDLE_PATHS.egress, readOnly: true });
    if (plan.files.gitGateConfig) {
      mounts.push({ source: join(plan.files.dir, "git-gate"), target: BUNDLE_PATHS.gitGate, readOnly: true });
      mounts.push({ type: "volume", source: await gitGateVolume(plan, labels("volume-git-gate")), target: BUNDLE_PATHS.gitGateStore });
    }
    // The queue folder itself, not its parent: from the parent the bundle could swap the
    // queue for a symlink, and bb-supervise on the host would follow it to write elsewhere.
    // Sticky, so no daemon can move or remove what another uid wrote there (queue.ts).
    if (plan.files.superviseQueue) {
      await shareQueueDir(plan.files.superviseQueue);
      mounts.push({ source: plan.files.superviseQueue, target: `${BUNDLE_PATHS.supervise}/queue` });
    }
    mounts.push(...localMounts);
    const env: Record<string, string> = { BB_SERVICES: plan.services.join(","), BB_SLUG: plan.slug, ...secrets.env, ...(await caKeyEnv(ca.key)) };
    if (plan.files.gitGateConfig) Object.assign(env, await identityEnv(plan));
    if (host) env.BB_DAEMON_IDS = daemonIds(host);
    if (opts.upstreamCaPem) {
      const dir = join(plan.files.dir, "upstream-ca");
      await dirWithMode(dir, 0o750);
      await writeFileAtomic(join(dir, "ca.pem"), opts.upstreamCaPem, 0o644);
      mounts.push({ source: dir, target: BUNDLE_PATHS.upstreamCa, readOnly: true });
      env.BB_UPSTREAM_CA = `${BUNDLE_PATHS.upstreamCa}/ca.pem`;
    }
    // smolmachines: the agent reaches supervise at this host address (published below), and
    // supervise answers only requests that name the address the agent uses (DNS rebinding).
    if (!docker) env.BB_LOOPBACK_ADDR = opts.loopbackAddr ?? "127.0.0.1";
    // ...where every local user can connect too: the ports serve only the agent's key. It
    // goes by name (lib/docker/env.ts): its value in the docker CLI's own environment,
    // which only you (and root) can read, never on its command line.
    if (!docker) env[AGENT_KEY_ENV] = await bottleAgentKey(plan.files.dir);

    const container = names.bundle(plan.slug);
    const facing = AGENT_FACING.filter((s) => plan.services.includes(s as Service));
    log.step(`bundle: starting ${container} (${plan.services.join(", ")})`);
    await runContainer({
      name: container,
      image,
      labels: labels("bundle"),
      network: networkIds.egress,
      env,
      mounts,
      hostname: "bundle",
      logLimit: BOTTLE_LOG_LIMIT,
      // tini as PID 1 reaps the daemons' orphaned children (git) and forwards signals to init.
      init: true,
      // init runs as root with just what it takes to start each daemon under its own uid
      // (BB_DAEMON_IDS): the daemons themselves hold no capability, and nothing in the
      // bundle can gain one through a setuid binary.
      user: host ? "0:0" : undefined,
      capDrop: ["ALL"],
      capAdd: host ? ["SETUID", "SETGID", "SETPCAP", "KILL"] : [],
      securityOpt: ["no-new-privileges"],
      pidsLimit: PIDS_LIMIT.bundle,
      memoryMiB: BUNDLE_MEMORY_MIB,
      ...(docker ? {} : { publish: facing.map((s) => PORT_OF[s]), publishAddress: opts.loopbackAddr ?? "127.0.0.1" }),
    }).catch(async (e: Error) => {
      // A name in use is another run's bundle: never ours to remove.
      if (isNameInUse(e)) {
        throw new BbError("BUNDLE", `Cannot start the bundle: container ${container} already exists: ${alreadyStarted(plan.slug)}`, { cause: e });
      }
      await removeContainer(container).catch(() => {}); // created, but it did not start
      throw e;
    });
    undo.push(`remove container ${container}`, () => removeContainer(container));
    if (networkIds.internal) await connectNetwork({ network: networkIds.internal, name: internal!, container, aliases: facing.map(String) });
    checkAbort(opts.signal);

    if (!opts.noWait) await awaitBundle({ ...plan, bundle: { container } }, { timeoutMs: opts.readyTimeoutMs, signal: opts.signal });

    let section: BundleSection;
    if (docker) {
      section = {
        container,
        image,
        networks: { internal, egress },
        networkIds,
        caCert: ca.cert,
        agentUrls: {
          proxy: `http://firewall:${PORTS.firewall}`,
          gitGate: plan.services.includes("git-gate") ? `git://git-gate:${PORTS.gitGate}` : null,
          supervise: plan.services.includes("supervise") ? `http://supervise:${PORTS.supervise}/mcp` : null,
        },
        hostPorts: null,
        loopbackAddr: null,
        startedAt: (opts.now ?? (() => new Date()))().toISOString(),
      };
    } else {
      const ports: Record<string, number> = {};
      for (const s of facing) ports[s] = (await hostPort(container, PORT_OF[s])).port;
      const addr = opts.loopbackAddr ?? "127.0.0.1";
      section = {
        container,
        image,
        networks: { internal: null, egress },
        networkIds,
        caCert: ca.cert,
        // Without the key, which bb-provision puts in (agentUrlsWithKey) as it hands them
        // to the agent: the plan names only its file.
        agentUrls: {
          proxy: `http://${addr}:${ports.firewall}`,
          gitGate: ports["git-gate"] ? `git://${addr}:${ports["git-gate"]}` : null,
          supervise: ports.supervise ? `http://${addr}:${ports.supervise}/mcp` : null,
        },
        agentKeyFile: join(plan.files.dir, AGENT_KEY_FILE),
        hostPorts: ports,
        loopbackAddr: addr,
        startedAt: (opts.now ?? (() => new Date()))().toISOString(),
      };
    }
    const bundled = { ...plan, bundle: section };
    await opts.handOver?.(bundled);
    return bundled;
  } catch (e) {
    if (undo.pending) log.step(`bundle: rolling back what this step created for ${plan.slug}`);
    await undo.run();
    if (e instanceof BbError) throw e;
    throw new BbError("BUNDLE", `Cannot start bundle for ${plan.slug}: ${(e as Error).message}`, { cause: e });
  }
}

const alreadyStarted = (slug: string) =>
  `bottle ${slug} has a bundle already, which this plan did not start (bb-list --all shows it; bb-cleanup --slug ${slug} removes the bottle)`;
