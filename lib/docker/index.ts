// The docker driver: small functions over the docker CLI (through lib/proc.ts), one file
// per job. This gathers what callers use by name (`import * as docker from
// "../docker/index.ts"`); a module needing one helper imports its file.
export { LABEL, bottleLabels, decodeLabelValue, encodeLabelValue, type BackendName, type Role } from "./labels.ts";
export { dockerInfo } from "./daemon.ts";
export { connectNetwork, createNetwork, removeNetwork } from "./network.ts";
export { isNameInUse, removeContainer, runContainer } from "./container.ts";
export { hostPort, imageId, inspectContainer } from "./inspect.ts";
export { execIn } from "./exec.ts";
export { listContainers, listNetworks, listVolumes, type ContainerSummary, type LabelFilter, type NetworkSummary, type VolumeSummary } from "./list.ts";
export { removeVolume } from "./volume.ts";
