// The docker driver: small functions over the docker CLI (through lib/proc.ts), one file
// per job. Import from here: `import * as docker from "../docker/index.ts"`.
export { LABEL, bottleLabels, decodeLabelValue, encodeLabelValue, labelArgs, labelFilterArgs, parseLabelString, type BackendName, type BottleLabelInput, type Role } from "./labels.ts";
export { dockerInfo, type DockerInfo } from "./daemon.ts";
export { connectNetwork, createNetwork, removeNetwork, type NetworkSpec } from "./network.ts";
export { isNameInUse, removeContainer, runArgs, runContainer, type ContainerSpec, type Mount } from "./container.ts";
export { hostPort, imageId, inspectContainer, inspectImage, type ContainerInfo, type ImageInfo } from "./inspect.ts";
export { execArgs, execIn, type CapturedExecOptions, type ExecOptions } from "./exec.ts";
export { listContainers, listNetworks, listVolumes, type ContainerSummary, type LabelFilter, type NetworkSummary, type VolumeSummary } from "./list.ts";
export { createVolume, removeVolume, volumeLabels } from "./volume.ts";
export { envArgs } from "./env.ts";
