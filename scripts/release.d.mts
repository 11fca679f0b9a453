// Types of scripts/release.mjs for the tests that import it.
export declare function release(arch: 'x64' | 'arm64' | 'armv7', out: string): string;
