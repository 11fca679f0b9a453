// Symlinks under the dev root, shared between devices: every device that asks for a link
// claims it with a priority; the highest claim (the newest among equals) owns it. Links
// are replaced atomically (a temporary name, then rename), point relatively at the node,
// and are removed or handed to the next claimant when their device goes.
import { lstatSync, readdirSync, readlinkSync, rmdirSync, unlinkSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import { HotplugError } from '../errors.js';
import { insideRoot, replaceSymlink } from './paths.js';
import { attempt, type ActionResult } from './results.js';

interface Claim {
  devpath: string;
  devnode: string;
  priority: number;
  /** Increases with every claim, so the newest wins a tie. */
  order: number;
}

export class LinkTable {
  readonly devRoot: string;
  /** link path → claims */
  #claims = new Map<string, Claim[]>();
  /** devpath → the links it claims */
  #byDevice = new Map<string, Set<string>>();
  #order = 0;

  constructor(devRoot: string) {
    this.devRoot = devRoot;
  }

  /** The links a device holds claims on. */
  linksOf(devpath: string): string[] {
    return [...(this.#byDevice.get(devpath) ?? [])];
  }

  /** The device whose node a link points to now, if any. */
  ownerOf(link: string): string | undefined {
    return this.#winner(link)?.devpath;
  }

  /**
   * Sets a device's links to exactly `links` (absolute paths under the dev root): new ones
   * are claimed, dropped ones released; every link whose owner changed is rewritten.
   */
  update(devpath: string, devnode: string | null, links: readonly string[], priority: number): ActionResult[] {
    const wanted = devnode === null ? new Set<string>() : new Set(links);
    const before = this.#byDevice.get(devpath) ?? new Set<string>();
    const touched = new Set<string>([...before, ...wanted]);
    for (const link of before) if (!wanted.has(link)) this.#release(link, devpath);
    for (const link of wanted) this.#claim(link, { devpath, devnode: devnode as string, priority, order: ++this.#order });
    if (wanted.size > 0) this.#byDevice.set(devpath, wanted);
    else this.#byDevice.delete(devpath);
    return [...touched].flatMap((link) => this.#sync(link) ?? []);
  }

  /** The device is gone: release all its links. */
  remove(devpath: string): ActionResult[] {
    return this.update(devpath, null, [], 0);
  }

  #claim(link: string, claim: Claim): void {
    const claims = (this.#claims.get(link) ?? []).filter((c) => c.devpath !== claim.devpath);
    claims.push(claim);
    this.#claims.set(link, claims);
  }

  #release(link: string, devpath: string): void {
    const claims = (this.#claims.get(link) ?? []).filter((c) => c.devpath !== devpath);
    if (claims.length > 0) this.#claims.set(link, claims);
    else this.#claims.delete(link);
  }

  #winner(link: string): Claim | undefined {
    let best: Claim | undefined;
    for (const c of this.#claims.get(link) ?? []) {
      if (best === undefined || c.priority > best.priority || (c.priority === best.priority && c.order > best.order)) best = c;
    }
    return best;
  }

  // As udev: directories that only held links (by-id/, serial/...) go with their last link.
  #removeEmptyParents(path: string): void {
    for (let dir = dirname(path); dir.startsWith(`${this.devRoot}/`); dir = dirname(dir)) {
      try {
        if (readdirSync(dir).length > 0) return;
        rmdirSync(dir);
      } catch {
        return;
      }
    }
  }

  // Makes the file system agree with the table for one link; no result when it already does.
  #sync(link: string): ActionResult | undefined {
    const winner = this.#winner(link);
    let path: string;
    let target: string | undefined;
    try {
      path = insideRoot(this.devRoot, link);
      target = winner === undefined ? undefined : relative(dirname(path), insideRoot(this.devRoot, winner.devnode));
      const existing = lstatSync(path, { throwIfNoEntry: false });
      if (existing === undefined ? target === undefined : existing.isSymbolicLink() && readlinkSync(path) === target) return undefined;
    } catch (error) {
      return attempt('symlink', link, null, () => {
        throw error;
      });
    }
    return attempt('symlink', link, null, () => {
      const existing = lstatSync(path, { throwIfNoEntry: false });
      if (existing !== undefined && !existing.isSymbolicLink()) throw new HotplugError('EEXIST', `${path} exists and is not a symlink`);
      if (target === undefined) {
        unlinkSync(path);
        this.#removeEmptyParents(path);
        return;
      }
      replaceSymlink(this.devRoot, path, target);
    });
  }
}
