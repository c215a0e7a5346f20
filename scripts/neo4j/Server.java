// A local Neo4j Community server for kgdistill's tests and benchmarks.
//
//   java -cp '<lib>/*' Server.java <home-dir> <port>      (or compiled: java -cp '<classes>:<lib>/*' Server ...)
//
// Bolt only, bound to 127.0.0.1. Authentication is on when NEO4J_PASSWORD is set in the
// environment (the password never appears on the command line); user NEO4J_USER (default neo4j).
// Memory: NEO4J_PAGECACHE (default 64m) for the page cache; the heap is set by the caller (-Xmx).
// Prints "READY bolt://127.0.0.1:<port>" once Bolt accepts connections; shuts down cleanly on SIGTERM.
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;

public class Server {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: Server <home-dir> <port>");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        int port = Integer.parseInt(args[1]);
        Files.createDirectories(home);
        String password = System.getenv().getOrDefault("NEO4J_PASSWORD", "");
        String user = System.getenv().getOrDefault("NEO4J_USER", "neo4j");
        String pageCache = System.getenv().getOrDefault("NEO4J_PAGECACHE", "64m");
        String address = "127.0.0.1:" + port;

        Map<String, String> cfg = new HashMap<>();
        cfg.put("server.bolt.enabled", "true");
        cfg.put("server.bolt.listen_address", address);
        cfg.put("server.bolt.advertised_address", address);
        cfg.put("server.default_listen_address", "127.0.0.1");
        cfg.put("dbms.security.auth_enabled", password.isEmpty() ? "false" : "true");
        cfg.put("server.memory.pagecache.size", pageCache);
        // Throw-away data: small transaction log files, only the newest kept after a checkpoint.
        cfg.put("db.tx_log.rotation.retention_policy", "false");
        cfg.put("db.tx_log.rotation.size", "32m");

        // The public builder takes settings from a properties file (strict validation: a wrong key stops start-up).
        StringBuilder props = new StringBuilder();
        cfg.forEach((k, v) -> props.append(k).append('=').append(v).append('\n'));
        Path conf = home.resolve("kgdistill-neo4j.conf");
        Files.writeString(conf, props.toString());

        long t0 = System.nanoTime();
        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home).loadPropertiesFromFile(conf).build();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            dbms.shutdown();
            System.out.println("STOPPED");
            System.out.flush();
        }));
        if (!password.isEmpty()) {
            setPassword(dbms.database("system"), user, password);
        }
        // Touch the default database so the first client does not pay for its start.
        dbms.database("neo4j").executeTransactionally("RETURN 1");
        System.out.printf("READY bolt://%s (%.1f s)%n", address, (System.nanoTime() - t0) / 1e9);
        System.out.flush();
        Thread.currentThread().join();
    }

    private static void setPassword(GraphDatabaseService system, String user, String password) {
        Map<String, Object> p = Map.of("user", user, "password", password);
        try {
            if (user.equals("neo4j")) {
                system.executeTransactionally("ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED", p);
            } else {
                system.executeTransactionally(
                    "CREATE USER $user IF NOT EXISTS SET PASSWORD $password CHANGE NOT REQUIRED", p);
                system.executeTransactionally("ALTER USER $user SET PASSWORD $password CHANGE NOT REQUIRED", p);
            }
        } catch (RuntimeException e) {
            // A reused data folder already holds this password ("new password cannot be the same").
            String msg = String.valueOf(e.getMessage());
            if (!msg.toLowerCase().contains("same")) {
                throw e;
            }
        }
    }
}
