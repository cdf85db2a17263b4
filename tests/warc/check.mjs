// Read WARC files with an independent reader, webrecorder's warcio (the
// JavaScript one, from npm), and print what it found as JSON.
//
//   node check.mjs [--extract DIR] FILE...
//
// For every record warcio yields: its offset and length (warcio's own
// indexing), WARC type and fields, the payload as `warcio extract` gives it
// (transfer and content coding removed; written to DIR/NAME@OFFSET with
// --extract), and digest verdicts.  warcio.js computes digests only when it
// writes a record, never when it reads one, so the digests are checked here,
// with node's crypto, over the bytes warcio's parser hands out: the block
// for WARC-Block-Digest, and for WARC-Payload-Digest the entity body with
// the transfer coding removed by warcio's de-chunker, as WARC/1.1 (6.3.2)
// defines the payload.  `payloadDigestRaw` says whether the digest would
// match without de-chunking, the convention of python warcio (its issue 74).
//
// warcio stops quietly at a torn gzip member: it yields nothing for it, or
// a record shorter than its Content-Length.  So a torn record is found
// here: each record's member must inflate on its own with node's zlib
// (complete, CRC checked), its block must be as long as its Content-Length,
// and bytes after the last whole record are a torn tail.
//
// Exit status: 0 when nothing is wrong but a torn last record (reported,
// for the caller to judge), 1 when something is, 2 on bad usage.
import { createHash } from "node:crypto";
import { createReadStream, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { gunzipSync } from "node:zlib";

import { AsyncIterReader, StatusAndHeadersParser, WARCParser } from "warcio";

const sha256 = (bytes) => createHash("sha256").update(bytes).digest();
const hex = (buf) => Buffer.from(buf).toString("hex");

// The bytes of a labelled sha256 digest, base32 (RFC 4648) or hex; null if
// it is neither (or another algorithm).
function unlabel(value) {
	if (!value) return null;
	const m = /^sha-?256:(.*)$/i.exec(value.trim());
	if (!m) return null;
	const v = m[1];
	if (/^[0-9a-f]{64}$/i.test(v)) return Buffer.from(v, "hex");
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	const s = v.replace(/=+$/, "").toUpperCase();
	if (s.length !== 52) return null;
	let bits = 0, acc = 0;
	const out = [];
	for (const c of s) {
		const i = alphabet.indexOf(c);
		if (i < 0) return null;
		acc = ((acc << 5) | i) & 0xfff;
		bits += 5;
		if (bits >= 8) {
			out.push((acc >> (bits - 8)) & 0xff);
			bits -= 8;
		}
	}
	return Buffer.from(out);
}

function verdict(label, bytes) {
	if (!label) return "absent";
	const want = unlabel(label);
	if (!want) return "unsupported";
	return want.equals(sha256(bytes)) ? "ok" : "mismatch";
}

// Split an HTTP message (a request or response block) with warcio's header
// parser; the body comes back as sent and with chunking removed by
// warcio's de-chunker (compression left alone: null means no decoding).
async function splitHttp(block) {
	const reader = new AsyncIterReader([block], null);
	const head = await new StatusAndHeadersParser().parse(reader, { headersClass: Headers });
	const raw = await reader.readFully();
	const te = head?.headers.get("transfer-encoding") || "";
	const chunked = /(^|,)\s*chunked\s*$/i.test(te);
	const body = chunked ? await new AsyncIterReader([raw], null, true).readFully() : raw;
	return { head, raw, body, chunked };
}

// warcio's view of a file: records with their offsets and lengths, and
// the payload as extracted.
async function pass1(path, extractDir) {
	const out = [];
	const parser = new WARCParser(createReadStream(path));
	for await (const record of parser) {
		const payload = record.httpHeaders ? await record.readFully(true) : await record.readFully();
		const h = (name) => record.warcHeader(name) ?? null;
		const r = {
			offset: parser.offset,
			length: parser.recordLength,
			type: record.warcType,
			uri: record.warcTargetURI ?? null,
			id: h("WARC-Record-ID"),
			date: record.warcDate ?? null,
			ip: h("WARC-IP-Address"),
			filename: h("WARC-Filename"),
			concurrentTo: h("WARC-Concurrent-To"),
			profile: h("WARC-Profile"),
			refersTo: h("WARC-Refers-To"),
			refersToUri: record.warcRefersToTargetURI ?? null,
			refersToDate: record.warcRefersToDate ?? null,
			truncated: h("WARC-Truncated"),
			contentType: record.warcContentType ?? null,
			contentLength: record.warcContentLength,
			blockDigestField: record.warcBlockDigest ?? null,
			payloadDigestField: record.warcPayloadDigest ?? null,
			httpStatus: record.httpHeaders?.statusCode ?? null,
			extractedLength: payload.length,
			extractedSha256: hex(sha256(payload)),
		};
		if (extractDir) {
			r.extracted = join(extractDir, `${basename(path)}@${r.offset}`);
			writeFileSync(r.extracted, payload);
		}
		out.push(r);
	}
	return out;
}

// The raw blocks, for the digests.
async function pass2(path) {
	const out = [];
	const parser = new WARCParser(createReadStream(path), { parseHttp: false });
	for await (const record of parser) {
		out.push({ offset: parser.offset, block: await record.readFully() });
	}
	return out;
}

async function checkFile(path, extractDir, errors) {
	const size = statSync(path).size;
	const bytes = readFileSync(path);
	const records = await pass1(path, extractDir);
	const blocks = await pass2(path);
	const file = { file: path, size, records, torn: null };

	if (blocks.length !== records.length) {
		errors.push(`${path}: ${records.length} records, but ${blocks.length} blocks`);
	}
	records.forEach((r, i) => {
		const last = i === records.length - 1;
		const problems = [];
		const b = blocks[i];
		if (!b || b.offset !== r.offset) {
			errors.push(`${path}@${r.offset}: the two passes disagree`);
			return;
		}
		r.blockLength = b.block.length;
		if (r.blockLength !== r.contentLength) {
			problems.push(`block of ${r.blockLength} bytes, Content-Length ${r.contentLength}`);
		}
		try {
			gunzipSync(bytes.subarray(r.offset, r.offset + r.length));
			r.gzipMember = "ok";
		} catch (e) {
			r.gzipMember = e.message;
			problems.push(`gzip member: ${e.message}`);
		}
		r.blockDigest = verdict(r.blockDigestField, b.block);
		if (r.blockDigest !== "ok") problems.push(`block digest ${r.blockDigest}`);
		if (problems.length > 0) {
			r.torn = problems.join("; ");
			if (last) file.torn = { offset: r.offset, reason: r.torn };
			else errors.push(`${path}@${r.offset}: ${r.torn}`);
		}
		r.payloadSha256 = null;
		r.payloadLength = null;
		r.payloadDigest = "absent";
		r.payloadDigestRaw = null;
		const http = ["response", "request"].includes(r.type) ||
			(r.type === "revisit" && r.contentLength > 0);
		r._http = http;
		r._block = b.block;
	});
	for (const r of records) {
		if (r._http) {
			const { head, raw, body, chunked } = await splitHttp(r._block);
			r.httpChunked = chunked;
			if (r.type === "revisit") {
				// The payload digest is the earlier capture's; only
				// the headers are here.
				r.payloadDigest = r.payloadDigestField ? "elsewhere" : "absent";
				r.headersOnly = raw.length === 0 && head !== null;
			} else {
				r.payloadSha256 = hex(sha256(body));
				r.payloadLength = body.length;
				r.payloadDigest = verdict(r.payloadDigestField, body);
				r.payloadDigestRaw = verdict(r.payloadDigestField, raw) === "ok";
				if (r.payloadDigest !== "ok" && r.truncated && chunked) {
					// warcio's de-chunker gives up on a chunk cut
					// short and hands back the framing with the data.
					r.payloadNote = "truncated inside a chunk: not checked";
				} else if (r.payloadDigest !== "ok" && !r.torn) {
					errors.push(`${path}@${r.offset}: payload digest ${r.payloadDigest}`);
				}
			}
		}
		delete r._http;
		delete r._block;
	}
	// What follows the last whole record is a member warcio did not yield.
	const end = records.length > 0 ? records.at(-1).offset + records.at(-1).length : 0;
	if (file.torn === null && end < size) {
		let reason;
		try {
			gunzipSync(bytes.subarray(end));
			reason = "a gzip member warcio did not read as a record";
		} catch (e) {
			reason = `gzip member: ${e.message}`;
		}
		file.torn = { offset: end, bytes: size - end, reason };
	}
	if (records.length === 0 || records[0].type !== "warcinfo") {
		errors.push(`${path}: does not start with a warcinfo record`);
	}
	return file;
}

async function main() {
	const args = process.argv.slice(2);
	let extractDir = null;
	if (args[0] === "--extract") {
		extractDir = args[1];
		args.splice(0, 2);
		mkdirSync(extractDir, { recursive: true });
	}
	if (args.length === 0 || args.some((a) => a.startsWith("--"))) {
		console.error("usage: node check.mjs [--extract DIR] FILE...");
		process.exit(2);
	}
	const errors = [];
	const files = [];
	for (const path of args) {
		try {
			files.push(await checkFile(path, extractDir, errors));
		} catch (e) {
			errors.push(`${path}: ${e.stack || e}`);
		}
	}
	const counts = {};
	for (const f of files) {
		for (const r of f.records) counts[r.type] = (counts[r.type] || 0) + 1;
	}
	process.stdout.write(JSON.stringify({ reader: "warcio", files, counts, errors }, null, 1) + "\n");
	// Not process.exit(): it would cut a report still going into a pipe.
	process.exitCode = errors.length > 0 ? 1 : 0;
}

await main();
