package streamer.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.streams.kstream.Windowed;

/** The serdes the oracle's topologies use: JSON values, and windowed keys as JSON objects. */
final class Json {
  static final ObjectMapper MAPPER = new ObjectMapper();

  private Json() {}

  /** Values as Jackson trees, the same JSON streamer's "json" serde reads and writes. */
  static Serde<JsonNode> tree() {
    Serializer<JsonNode> serializer = (topic, node) -> node == null ? null : write(node);
    Deserializer<JsonNode> deserializer = (topic, bytes) -> {
      try {
        return bytes == null ? null : MAPPER.readTree(bytes);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    };
    return Serdes.serdeFrom(serializer, deserializer);
  }

  /** Writes any value (a Long count, a String aggregate, a tree) as JSON; sinks only serialize. */
  static <T> Serde<T> out() {
    Serializer<T> serializer = (topic, value) -> value == null ? null : write(value);
    Deserializer<T> deserializer = (topic, bytes) -> {
      throw new UnsupportedOperationException("output-only serde");
    };
    return Serdes.serdeFrom(serializer, deserializer);
  }

  /** A windowed key as {"key": ..., "start": ..., "end": ...}, which the oracle decodes on output. */
  static Serde<Windowed<String>> windowedKey() {
    Serializer<Windowed<String>> serializer = (topic, windowed) -> {
      ObjectNode node = MAPPER.createObjectNode();
      node.put("key", windowed.key());
      node.put("start", windowed.window().start());
      node.put("end", windowed.window().end());
      return write(node);
    };
    Deserializer<Windowed<String>> deserializer = (topic, bytes) -> {
      throw new UnsupportedOperationException("output-only serde");
    };
    return Serdes.serdeFrom(serializer, deserializer);
  }

  static byte[] write(Object value) {
    try {
      return MAPPER.writeValueAsBytes(value);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
