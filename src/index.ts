// hotplugd's public API for Node programs.
export { HotplugError } from './errors.js';
export { KERNEL_ACTIONS, type Uevent, type EventSource, type Properties } from './uevent/event.js';
export { parseUevent, REJECT_REASONS, type ParseResult, type RejectReason } from './uevent/parse.js';
export { KernelUeventSource, type SourceCounters } from './uevent/source.js';
export { Sysfs, DeviceView } from './uevent/sysfs.js';
export { Daemon, type DaemonOptions } from './daemon/daemon.js';
export { openHistoryDb } from './history/db.js';
export { listEvents, listIncidents, type EventRecord, type IncidentRecord } from './history/records.js';
export { defaultDbPath } from './defaults.js';
export { HotplugClient, type ClientOptions, type SubscribeOptions, type HistoryQuery, type DaemonStatus, type HistoryRecord, type ProcessedRecord } from './client/client.js';
