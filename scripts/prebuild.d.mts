// Types of scripts/prebuild.mjs for the tests that import it.
export declare const TARGETS: Record<'x64' | 'arm64' | 'arm', { machine: number; bits: number; cross: string | undefined; armv?: string }>;
export declare function elfHeader(path: string): { bits: number; machine: number } | undefined;
