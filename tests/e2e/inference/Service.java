// A thread-pool service: com.sun.net.httpserver with a fixed pool of 8 threads; each request is
// read, forwarded to the backend's /down{path} with HttpURLConnection, and answered on one pool
// thread. Run as a single-file program:
//
//     java Service.java PORT BACKEND_HOST:PORT
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;

public class Service {
    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        String backend = args[1];
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 128);
        server.createContext("/", exchange -> {
            String path = exchange.getRequestURI().getPath();
            exchange.getRequestBody().readAllBytes();
            int status = 200;
            byte[] body;
            try {
                HttpURLConnection conn =
                    (HttpURLConnection) new URL("http://" + backend + "/down" + path).openConnection();
                conn.setConnectTimeout(5000);
                conn.setReadTimeout(10000);
                try (InputStream in = conn.getInputStream()) {
                    body = in.readAllBytes();
                }
            } catch (IOException e) {
                status = 502;
                body = ("error " + e + "\n").getBytes(StandardCharsets.UTF_8);
            }
            exchange.sendResponseHeaders(status, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        server.setExecutor(Executors.newFixedThreadPool(8));
        server.start();
    }
}
