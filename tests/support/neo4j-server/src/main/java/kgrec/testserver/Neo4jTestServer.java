package kgrec.testserver;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.connectors.ConnectorPortRegister;
import org.neo4j.configuration.connectors.ConnectorType;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.io.ByteUnit;
import org.neo4j.kernel.internal.GraphDatabaseAPI;

/**
 * An embedded Neo4j 5 DBMS for kgrec's tests, reachable over Bolt on 127.0.0.1 with auth off.
 *
 * <pre>
 * java -Xmx1g -cp 'target/classes:target/lib/*' kgrec.testserver.Neo4jTestServer PORT [DATA_DIR] [options]
 *
 *   PORT                 Bolt port on 127.0.0.1; 0 picks a free one (the READY line names it)
 *   DATA_DIR             the DBMS home (store files, transaction logs); kept on exit so that a
 *                        restart on the same directory sees the same data. Without it a temp
 *                        directory is used and deleted on exit.
 *   --page-cache-mb N    page cache size (default 64)
 *   --exit-on-stdin-eof  shut down when standard input closes (the parent process died)
 * </pre>
 *
 * <p>Configured as docs/security.md ("Read-only inspection") asks a team's server to be:
 * {@code LOAD CSV} cannot read {@code file:///} URLs
 * ({@code dbms.security.allow_csv_import_from_file_urls=false}), the import directory is an
 * empty folder of its own, and only the procedures in {@link #PROCEDURE_ALLOWLIST} can be loaded
 * from plugins ({@code dbms.security.procedures.allowlist}).
 *
 * <p>Prints {@code READY bolt://127.0.0.1:PORT} on stdout once the default database answers a
 * query, and {@code STOPPED} after a clean shutdown. SIGTERM (or SIGINT) shuts down cleanly via
 * a shutdown hook; SIGKILL leaves the store to Neo4j's recovery on the next start.
 */
public final class Neo4jTestServer {

    /** {@code dbms.security.procedures.allowlist}: the read-only schema procedures inspection may call. */
    static final List<String> PROCEDURE_ALLOWLIST = List.of(
            "db.labels", "db.relationshipTypes", "db.propertyKeys", "db.schema.visualization",
            "db.schema.nodeTypeProperties", "db.schema.relTypeProperties");

    private Neo4jTestServer() {
    }

    public static void main(String[] args) throws Exception {
        Options options;
        try {
            options = Options.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            System.err.println(
                    "usage: Neo4jTestServer PORT [DATA_DIR] [--page-cache-mb N] [--exit-on-stdin-eof]");
            System.exit(2);
            return;
        }

        boolean tempHome = options.dataDir == null;
        Path home = tempHome ? Files.createTempDirectory("kgrec-neo4j-") : options.dataDir.toAbsolutePath();
        Files.createDirectories(home);
        log("Neo4j " + neo4jVersion() + " starting: bolt on 127.0.0.1:" + options.port + ", data in " + home);

        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", options.port))
                .setConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", options.port))
                .setConfig(BoltConnector.thread_pool_max_size, 64)
                // Bolt waits 5 s per stage on shutdown by default: too slow for restart tests.
                .setConfig(BoltConnectorInternalSettings.thread_pool_shutdown_wait_time, Duration.ofSeconds(1))
                .setConfig(BoltConnectorInternalSettings.connection_shutdown_wait_time, Duration.ofSeconds(1))
                .setConfig(BoltConnectorInternalSettings.enable_local_connector, false)
                .setConfig(HttpConnector.enabled, false)
                .setConfig(HttpsConnector.enabled, false)
                .setConfig(GraphDatabaseSettings.auth_enabled, false)
                .setConfig(GraphDatabaseSettings.allow_file_urls, false)
                .setConfig(GraphDatabaseSettings.load_csv_file_url_root, Files.createDirectories(home.resolve("import")))
                .setConfig(GraphDatabaseSettings.procedure_allowlist, PROCEDURE_ALLOWLIST)
                .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.mebiBytes(options.pageCacheMb))
                .setConfig(GraphDatabaseSettings.preallocate_logical_logs, false)
                .setConfig(GraphDatabaseSettings.preallocate_store_files, false)
                .build();

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            log("shutting down");
            try {
                dbms.shutdown();
            } finally {
                if (tempHome) {
                    deleteTree(home);
                }
                System.out.println("STOPPED");
                System.out.flush();
                stopped.countDown();
            }
        }, "neo4j-test-server-shutdown"));

        GraphDatabaseService db = dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
        db.executeTransactionally("RETURN 1");
        int port = boltPort(db, options.port);

        if (options.exitOnStdinEof) {
            Thread watcher = new Thread(() -> {
                drain(System.in);
                log("standard input closed: exiting");
                System.exit(0);
            }, "stdin-eof-watcher");
            watcher.setDaemon(true);
            watcher.start();
        }

        System.out.println("READY bolt://127.0.0.1:" + port);
        System.out.flush();
        stopped.await();
    }

    /** The port Bolt actually listens on (differs from the requested one when that was 0). */
    private static int boltPort(GraphDatabaseService db, int requested) {
        try {
            ConnectorPortRegister ports = ((GraphDatabaseAPI) db).getDependencyResolver()
                    .resolveDependency(ConnectorPortRegister.class);
            var address = ports.getLocalAddress(ConnectorType.BOLT);
            return address == null ? requested : address.getPort();
        } catch (RuntimeException e) {
            return requested;
        }
    }

    private static String neo4jVersion() {
        String version = DatabaseManagementService.class.getPackage().getImplementationVersion();
        return version == null ? "5" : version;
    }

    private static void drain(InputStream in) {
        byte[] buffer = new byte[256];
        try {
            while (in.read(buffer) >= 0) {
                // discard: only the end of the stream matters
            }
        } catch (IOException ignored) {
            // a broken pipe means the parent is gone, same as EOF
        }
    }

    private static void deleteTree(Path root) {
        try (Stream<Path> paths = Files.walk(root)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            log("could not delete " + root + ": " + e.getMessage());
        }
    }

    private static void log(String message) {
        System.err.println("[neo4j-test-server] " + message);
        System.err.flush();
    }

    /** Command-line options. */
    private static final class Options {
        int port;
        Path dataDir;
        long pageCacheMb = 64;
        boolean exitOnStdinEof;

        static Options parse(String[] args) {
            Options o = new Options();
            List<String> positional = new ArrayList<>();
            for (int i = 0; i < args.length; i++) {
                switch (args[i]) {
                    case "--exit-on-stdin-eof" -> o.exitOnStdinEof = true;
                    case "--page-cache-mb" -> {
                        if (i + 1 >= args.length) {
                            throw new IllegalArgumentException("--page-cache-mb needs a number");
                        }
                        o.pageCacheMb = parseNumber(args[++i], "--page-cache-mb");
                    }
                    default -> {
                        if (args[i].startsWith("--")) {
                            throw new IllegalArgumentException("unknown option " + args[i]);
                        }
                        positional.add(args[i]);
                    }
                }
            }
            if (positional.isEmpty() || positional.size() > 2) {
                throw new IllegalArgumentException("expected PORT [DATA_DIR], got " + positional);
            }
            long port = parseNumber(positional.get(0), "PORT");
            if (port > 65535) {
                throw new IllegalArgumentException("PORT must be 0..65535, got " + port);
            }
            o.port = (int) port;
            if (positional.size() == 2) {
                o.dataDir = Path.of(positional.get(1));
            }
            return o;
        }

        private static long parseNumber(String text, String what) {
            try {
                long value = Long.parseLong(text);
                if (value < 0) {
                    throw new NumberFormatException();
                }
                return value;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(what + " must be a non-negative integer, got '" + text + "'");
            }
        }
    }
}
