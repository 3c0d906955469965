// Preloaded (`node -r`) into HTTP servers the tests start: every listen()
// without a host binds 127.0.0.1 only, and the port actually bound is
// reported on stderr as "LATCH_TEST_LISTENING <port>" (so PORT=0 works and
// the test waits for that line instead of sleeping).
const net = require("node:net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || typeof args[0] === "string") {
    if (typeof args[1] !== "string") args.splice(1, 0, "127.0.0.1");
  } else if (args[0] && typeof args[0] === "object" && !args[0].host && !args[0].path) {
    args[0] = { ...args[0], host: "127.0.0.1" };
  }
  this.once("listening", () => {
    const a = this.address();
    if (a && typeof a === "object") process.stderr.write(`LATCH_TEST_LISTENING ${a.port}\n`);
  });
  return listen.apply(this, args);
};
