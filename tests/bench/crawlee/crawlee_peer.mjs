// Crawlee as a peer for tests/bench: the framework people pick for scraping
// in Node.js.  An HttpCrawler with maxConcurrency N (and minConcurrency N,
// so its autoscaler starts at the limit the other tools get instead of
// ramping up from 1) fetches every URL of a file; each result goes to the
// default Dataset, Crawlee's usual result store.
//
//   node crawlee_peer.mjs --urls FILE --storage DIR [--concurrency N]
//                         [--per-host N] [--cafile CA.pem]
//
// The dataset items ({url, status, length}) are in DIR/datasets/default/;
// the harness counts them.  --cafile goes to Node as NODE_EXTRA_CA_CERTS
// (set by the harness): Node reads it only at start-up.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
	options: {
		urls: { type: 'string' },
		storage: { type: 'string' },
		concurrency: { type: 'string', default: '64' },
		'per-host': { type: 'string' },
		cafile: { type: 'string' },
	},
});
// Crawlee picks its storage directory from the environment when it loads.
process.env.CRAWLEE_STORAGE_DIR = a.storage;
process.env.CRAWLEE_PURGE_ON_START = 'true';
const { HttpCrawler, Dataset } = await import('@crawlee/http');

const n = Number(a.concurrency);
const urls = readFileSync(a.urls, 'utf8').split('\n').filter((u) => u.trim());
const crawler = new HttpCrawler({
	minConcurrency: n,
	maxConcurrency: n,
	maxRequestRetries: 2,
	requestHandlerTimeoutSecs: 120,
	navigationTimeoutSecs: 120,
	useSessionPool: false,
	persistCookiesPerSession: false,
	async requestHandler({ request, response, body }) {
		await Dataset.pushData({
			url: request.url,
			status: response.statusCode,
			length: body.length,
		});
	},
	async failedRequestHandler({ request }, error) {
		await Dataset.pushData({
			url: request.url,
			status: null,
			length: null,
			error: String(error && error.name),
		});
	},
});
// Each URL is distinct already; uniqueKey keeps Crawlee from normalising
// two of them into one.
await crawler.run(urls.map((u, i) => ({ url: u, uniqueKey: String(i) })));
