/* The keys and values of an uncompressed record batch (format v2) in C, for restores.
 *
 * A restore needs only each record's key and value; aiokafka's batch reader builds a
 * record object per record (offset, timestamp, headers list, ...), which was the largest
 * cost left in a restore. This walks the records section of one batch and returns a list
 * of (key, value) tuples, None for a null key or value. Batch framing, CRCs, compression
 * and transactions stay in streamer/runtime/changelog_fetch.py, which falls back to
 * aiokafka's reader where this module was not built.
 *
 * A record: length, attributes (int8), timestamp delta, offset delta, key length, key,
 * value length, value, header count, headers; lengths and deltas are zigzag varints. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* Reads a zigzag varint of at most 10 bytes at *p (below end); 0 when it runs past end or is too long. */
static int read_varint(const unsigned char **p, const unsigned char *end, int64_t *out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return 0;
        unsigned char byte = *(*p)++;
        value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = (int64_t)(value >> 1) ^ -(int64_t)(value & 1);
            return 1;
        }
    }
    return 0;
}

/* bytes of the given length at *p, or None for -1; NULL (an error set) when it does not fit. */
static PyObject *read_bytes(const unsigned char **p, const unsigned char *end) {
    int64_t length;
    if (!read_varint(p, end, &length) || length < -1 || length > end - *p) {
        PyErr_SetString(PyExc_ValueError, "corrupt record: a key or value runs past its record");
        return NULL;
    }
    if (length == -1)
        Py_RETURN_NONE;
    PyObject *data = PyBytes_FromStringAndSize((const char *)*p, (Py_ssize_t)length);
    *p += length;
    return data;
}

static PyObject *py_entries(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "entries(data, start, end, count)");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]), stop = PyLong_AsSsize_t(args[2]), count = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = NULL;
    if (start < 0 || stop > view.len || start > stop || count < 0 || count > stop - start) {
        PyErr_SetString(PyExc_ValueError, "records section out of the buffer's bounds");
        goto done;
    }
    result = PyList_New(count);
    if (result == NULL)
        goto done;
    const unsigned char *p = (const unsigned char *)view.buf + start, *end = (const unsigned char *)view.buf + stop;
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t length, skipped;
        if (!read_varint(&p, end, &length) || length < 1 || length > end - p) {
            PyErr_SetString(PyExc_ValueError, "corrupt record: its length runs past the batch");
            goto fail;
        }
        const unsigned char *record_end = p + length;
        p++; /* attributes */
        if (!read_varint(&p, record_end, &skipped) || !read_varint(&p, record_end, &skipped)) {
            PyErr_SetString(PyExc_ValueError, "corrupt record: truncated timestamp or offset delta");
            goto fail;
        }
        PyObject *key = read_bytes(&p, record_end);
        if (key == NULL)
            goto fail;
        PyObject *value = read_bytes(&p, record_end);
        if (value == NULL) {
            Py_DECREF(key);
            goto fail;
        }
        PyObject *entry = PyTuple_New(2);
        if (entry == NULL) {
            Py_DECREF(key);
            Py_DECREF(value);
            goto fail;
        }
        PyTuple_SET_ITEM(entry, 0, key);
        PyTuple_SET_ITEM(entry, 1, value);
        PyObject_GC_UnTrack(entry); /* bytes and None make no cycles: spare the collector a visit per record */
        PyList_SET_ITEM(result, i, entry);
        p = record_end; /* headers: not part of a store's entry */
    }
    goto done;
fail:
    Py_CLEAR(result);
done:
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"entries", (PyCFunction)(void (*)(void))py_entries, METH_FASTCALL,
     "entries(data, start, end, count): (key, value) of the count records in data[start:end]."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "streamer._native.records", NULL, -1, methods};

PyMODINIT_FUNC PyInit_records(void) { return PyModule_Create(&module); }
