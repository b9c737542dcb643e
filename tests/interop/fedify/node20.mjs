// Node 20 lacks ArrayBuffer.prototype.transfer (ES2024, Node 21+). Fedify 1.10's base64
// helper (byte-encodings) calls it, and every Fedify release that speaks RFC 9421 (1.6+)
// declares Node 22. This adds the standard method only where it is missing: a copy into
// a buffer of the requested length, then the source is detached as the spec requires.
if (typeof ArrayBuffer.prototype.transfer !== "function") {
  Object.defineProperty(ArrayBuffer.prototype, "transfer", {
    configurable: true,
    writable: true,
    value(newLength = this.byteLength) {
      const copy = new Uint8Array(newLength);
      copy.set(new Uint8Array(this, 0, Math.min(newLength, this.byteLength)));
      structuredClone(this, { transfer: [this] });
      return copy.buffer;
    },
  });
}
