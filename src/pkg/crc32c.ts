/** CRC-32C (Castagnoli), the checksum etcd uses for HashKV and its WAL. */
const table = makeTable(0x82f63b78);

function makeTable(polynomial: number): Uint32Array {
  const result = new Uint32Array(256 * 8);
  for (let index = 0; index < 256; index++) {
    let crc = index;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ polynomial : crc >>> 1;
    result[index] = crc >>> 0;
  }
  // Slicing-by-8 tables: table k gives the CRC of a byte followed by k zero bytes.
  for (let index = 0; index < 256; index++) {
    for (let slice = 1; slice < 8; slice++) {
      const previous = result[(slice - 1) * 256 + index]!;
      result[slice * 256 + index] = ((previous >>> 8) ^ result[previous & 0xff]!) >>> 0;
    }
  }
  return result;
}

/** Continues `crc` (0 to start) over `bytes`. */
export function crc32c(bytes: Uint8Array, crc = 0): number {
  let value = ~crc >>> 0;
  let offset = 0;
  const end8 = bytes.length - (bytes.length % 8);
  while (offset < end8) {
    const a = (value ^ (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24))) >>> 0;
    value =
      table[7 * 256 + (a & 0xff)]! ^
      table[6 * 256 + ((a >>> 8) & 0xff)]! ^
      table[5 * 256 + ((a >>> 16) & 0xff)]! ^
      table[4 * 256 + (a >>> 24)]! ^
      table[3 * 256 + bytes[offset + 4]!]! ^
      table[2 * 256 + bytes[offset + 5]!]! ^
      table[1 * 256 + bytes[offset + 6]!]! ^
      table[bytes[offset + 7]!]!;
    offset += 8;
  }
  while (offset < bytes.length) value = table[(value ^ bytes[offset++]!) & 0xff]! ^ (value >>> 8);
  return ~value >>> 0;
}
