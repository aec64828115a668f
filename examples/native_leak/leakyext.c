/* A tiny CPython extension that leaks: every call to process() mallocs a scratch buffer, uses it, and
 * forgets to free it. tracemalloc cannot see this memory; leakbench's native tracker can. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

static PyObject *leaky_process(PyObject *self, PyObject *args) {
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "n", &size)) return NULL;
    unsigned char *scratch = malloc((size_t)size);
    if (scratch == NULL) return PyErr_NoMemory();
    memset(scratch, 0x5a, (size_t)size);
    unsigned long checksum = 0;
    for (Py_ssize_t i = 0; i < size; i += 4096) checksum += scratch[i];
    /* bug: free(scratch) is missing */
    return PyLong_FromUnsignedLong(checksum);
}

static PyMethodDef methods[] = {
    {"process", leaky_process, METH_VARARGS, "Checksum a scratch buffer of the given size (leaks it)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "leakyext", NULL, -1, methods};

PyMODINIT_FUNC PyInit_leakyext(void) { return PyModule_Create(&module); }
