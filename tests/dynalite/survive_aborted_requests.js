// Preloaded into dynalite (node --require): a client that goes away mid-request must not take
// the server down. dynalite 4.0.0 rethrows the request's "aborted" error (index.js,
// `req.on('error', function (err) { throw err })`; architect/dynalite issue 183, open), so one
// publisher killed half way through a request body, which the kill -9 test does on purpose,
// ended the shared server and failed every test after it. DynamoDB itself drops such a request
// and serves the next one; so does dynalite with this. Any other uncaught error still ends it.
'use strict'

process.on('uncaughtException', (err) => {
  if (err && err.code === 'ECONNRESET' && err.message === 'aborted') {
    console.error('[survive_aborted_requests] a client went away mid-request; request dropped')
    return
  }
  console.error(err)
  process.exit(1)
})
