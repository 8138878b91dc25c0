// Hocuspocus on 127.0.0.1:$HP_PORT for the benchmarks (benchmarks/peers.sh start hocuspocus).
// In memory by default; HP_STORE=sqlite:FILE adds @hocuspocus/extension-sqlite writing FILE.
// Modules resolve from benchmarks/peers/node_modules (the current directory).
const path = require('path');
const req = (m) => require(require.resolve(m, { paths: [process.cwd()] }));
const { Server } = req('@hocuspocus/server');
const extensions = [];
const store = process.env.HP_STORE || '';
if (store.startsWith('sqlite:')) {
  const { SQLite } = req('@hocuspocus/extension-sqlite');
  extensions.push(new SQLite({ database: path.resolve(store.slice(7)) }));
}
const server = Server.configure({
  port: Number(process.env.HP_PORT || 1234),
  address: '127.0.0.1',
  quiet: true,
  extensions,
});
server.listen().then(() => console.log(`hocuspocus listening on ${process.env.HP_PORT}`));
