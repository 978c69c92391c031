// ESM resolve hook: @anycable/serverless-js 0.1.0 ships ESM with
// directory imports (`from './rpc'`), which Node refuses with
// ERR_UNSUPPORTED_DIR_IMPORT. Map such a specifier to <specifier>/index.js.
export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    if (err?.code === 'ERR_UNSUPPORTED_DIR_IMPORT') {
      return nextResolve(`${specifier}/index.js`, context);
    }
    throw err;
  }
}
