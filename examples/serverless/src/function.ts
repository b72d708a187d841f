/**
 * The deployment: the saga's services behind one HTTP endpoint (`GET /discover`,
 * `POST /invoke/{service}/{handler}`), with no Redis of its own. The engine that registers it
 * runs the invocations and pushes each step here. The same file deploys to a fetch runtime (its
 * default export) or to AWS Lambda (`handler`).
 *
 * AWS Lambda with a function URL (README.md has every step):
 *
 *   npm run build && npx esbuild examples/serverless/dist/function.js --bundle \
 *     --platform=node --format=esm --outfile=out/function.mjs
 *   (cd out && zip function.zip function.mjs)
 *   aws lambda create-function --function-name latchkey-saga --runtime nodejs20.x \
 *     --handler function.handler --zip-file fileb://out/function.zip --role <execution role ARN>
 *   aws lambda create-function-url-config --function-name latchkey-saga --auth-type NONE
 *   (and the two `aws lambda add-permission` a public URL needs: README.md)
 *   latchkey deployments add https://<id>.lambda-url.<region>.on.aws   # against the engine
 *
 * `--auth-type AWS_IAM` keeps the URL private instead, but the engine does not sign requests
 * with AWS SigV4: it then needs a signing proxy in between (README.md).
 *
 * Cloudflare Workers, Deno, Bun: serve the default export (`wrangler deploy` with `main` set to
 * dist/function.js and the `nodejs_compat` flag; `deno serve`; `bun run`).
 *
 * Signing: a public URL lets anyone run these handlers. Give the engine an Ed25519 private key
 * (`serve({ signingKey })` or `LATCHKEY_SIGNING_KEY`) and this function the matching public key
 * (`LATCHKEY_IDENTITY_KEYS`, comma-separated, PEM or base64 SPKI, or the `identityKeys` option): it
 * then answers only requests the engine signed, and 401 to the rest.
 */
import { createEndpointHandler } from '@latchkey/core/fetch';
import * as lambda from '@latchkey/core/lambda';
import { services } from './saga.js';

// The engines' public keys come from `LATCHKEY_IDENTITY_KEYS` (createEndpointHandler reads it).
const options = { services };

/** AWS Lambda (function URL, API Gateway REST or HTTP API): handler `function.handler`. */
export const handler = lambda.createEndpointHandler(options);

/** Cloudflare Workers, Deno, Bun, Vercel: `(request: Request) => Promise<Response>`. */
export default { fetch: createEndpointHandler(options) };
