using System.Buffers.Binary;
using System.Text;

namespace BinEngine.Converter;

/// <summary>
/// A pickle reader that understands exactly what <c>torch.save(state_dict)</c> emits (protocol 2,
/// plus the protocol-4 framing and memo opcodes) and nothing that can run code. It never imports
/// or calls anything: globals are names checked against a fixed allow-list
/// (<see cref="AllowedGlobals"/>), and REDUCE/BUILD are interpreted only for those names —
/// <c>collections.OrderedDict()</c> builds a dict, <c>torch._utils._rebuild_tensor_v2</c> and
/// <c>_rebuild_parameter</c> build a <see cref="PickledTensor"/> description, persistent ids name
/// storages. Every other opcode or global is rejected with its byte offset.
/// </summary>
internal static class RestrictedUnpickler
{
    /// <summary>The globals a torch state_dict pickle may name: the dict type, the tensor rebuilders and the typed storages.</summary>
    public static IReadOnlyCollection<string> AllowedGlobals { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch.FloatStorage", "torch.DoubleStorage", "torch.HalfStorage", "torch.BFloat16Storage",
        "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage",
        "torch.ByteStorage", "torch.BoolStorage",
    };

    /// <summary>
    /// Most objects the stack may hold at once. A state_dict pickle batches SETITEMS by 1000
    /// (pickle's batch size), so its stack stays in the low thousands; a pickle that pushes
    /// millions of objects is an attack on memory, not a checkpoint.
    /// </summary>
    public const int MaxStackObjects = 1 << 20;

    /// <summary>
    /// Most objects a pickle may push or memoize in all (each costs at most ~100 bytes: a dict, a list,
    /// a boxed int, a memo slot), so a small pickle cannot build gigabytes of containers by collapsing
    /// them into tuples or keeping them in the memo (a 16 MB "memo bomb" reached 1.1 GB before this
    /// bound). torch.save pushes about 30 objects per tensor, so this allows ~17,000 tensors.
    /// </summary>
    public const int MaxObjects = 1 << 19;

    /// <summary>A global named by the pickle (only allowed names are ever constructed).</summary>
    public sealed record PickledGlobal(string Module, string Name)
    {
        /// <summary>"module.name".</summary>
        public string FullName => Module + "." + Name;
    }

    /// <summary>A storage named by a persistent id ('storage', type, key, location, numel).</summary>
    public sealed record PickledStorage(SourceDType DType, string Key, string Location, long ElementCount);

    /// <summary>A tensor view of a storage, as <c>_rebuild_tensor_v2</c> describes it.</summary>
    public sealed record PickledTensor(PickledStorage Storage, long StorageOffset, long[] Size, long[] Stride);

    /// <summary>A dict or OrderedDict, insertion order kept.</summary>
    public sealed class PickledDict
    {
        /// <summary>The entries in insertion order.</summary>
        public List<KeyValuePair<object, object>> Items { get; } = [];
    }

    private sealed class Mark
    {
        public static readonly Mark Instance = new();
    }

    /// <summary>Python's None.</summary>
    public sealed class None
    {
        /// <summary>The one None.</summary>
        public static readonly None Instance = new();
    }

    /// <summary>Interprets a pickle and returns its top-level object.</summary>
    /// <exception cref="ConversionException">A forbidden or malformed opcode, a forbidden global, or a structure torch.save does not emit.</exception>
    public static object Load(ReadOnlySpan<byte> pickle, string name)
    {
        var stack = new List<object>();
        var marks = new Stack<int>();
        var memo = new Dictionary<long, object>();
        int pos = 0;

        string Where(int at) => $"{name}: pickle byte {at}";
        ReadOnlySpan<byte> Take(ReadOnlySpan<byte> p, ref int position, long count, int at)
        {
            if (count < 0 || count > p.Length - position)
                throw new ConversionException($"{Where(at)}: needs {count} bytes, {p.Length - position} remain (truncated pickle)");
            var s = p.Slice(position, (int)count);
            position += (int)count;
            return s;
        }
        object Pop(int at)
        {
            if (stack.Count == 0 || (marks.Count > 0 && stack.Count <= marks.Peek()))
                throw new ConversionException($"{Where(at)}: stack underflow");
            object o = stack[^1];
            stack.RemoveAt(stack.Count - 1);
            return o;
        }
        List<object> PopToMark(int at)
        {
            if (marks.Count == 0)
                throw new ConversionException($"{Where(at)}: no MARK to pop to");
            int m = marks.Pop();
            var items = stack.GetRange(m, stack.Count - m);
            stack.RemoveRange(m, stack.Count - m);
            return items;
        }
        object Peek(int at) => stack.Count > 0 && (marks.Count == 0 || stack.Count > marks.Peek()) ? stack[^1]
            : throw new ConversionException($"{Where(at)}: stack underflow");
        int objects = 0;
        void Count(int at)
        {
            if (++objects > MaxObjects)
                throw new ConversionException($"{Where(at)}: more than {MaxObjects} objects pushed or memoized; a state_dict needs about 30 per tensor, so this is a memory bomb, not a checkpoint");
        }
        void Push(object o, int at)
        {
            Count(at);
            stack.Add(o);
        }
        void Put(long index, int at)
        {
            Count(at);
            memo[index] = Peek(at);
        }
        object Get(long index, int at) => memo.TryGetValue(index, out var o) ? o
            : throw new ConversionException($"{Where(at)}: memo {index} was never stored");
        var utf8 = new UTF8Encoding(false, true);
        string Utf8(ReadOnlySpan<byte> b, int at)
        {
            try { return utf8.GetString(b); }
            catch (DecoderFallbackException e) { throw new ConversionException($"{Where(at)}: string is not valid UTF-8", e); }
        }

        while (true)
        {
            int at = pos;
            if (pos >= pickle.Length)
                throw new ConversionException($"{Where(at)}: pickle ends without STOP (truncated)");
            byte op = pickle[pos++];
            if (stack.Count >= MaxStackObjects)
                throw new ConversionException($"{Where(at)}: more than {MaxStackObjects} objects on the pickle stack; not a state_dict");
            switch (op)
            {
                case 0x80: // PROTO
                    byte proto = Take(pickle, ref pos, 1, at)[0];
                    if (proto > 5)
                        throw new ConversionException($"{Where(at)}: pickle protocol {proto} is unknown");
                    break;
                case 0x95: // FRAME: an 8-byte length hint; frames need no special handling when the whole pickle is in memory.
                    Take(pickle, ref pos, 8, at);
                    break;
                case (byte)'.': // STOP
                    if (stack.Count != 1 || marks.Count != 0)
                        throw new ConversionException($"{Where(at)}: STOP with {stack.Count} objects on the stack and {marks.Count} open marks");
                    return stack[0];
                case (byte)'(': // MARK
                    marks.Push(stack.Count);
                    break;
                case (byte)')': // EMPTY_TUPLE
                    Push(Array.Empty<object>(), at);
                    break;
                case (byte)'t': // TUPLE
                    Push(PopToMark(at).ToArray(), at);
                    break;
                case 0x85: // TUPLE1
                    Push(new[] { Pop(at) }, at);
                    break;
                case 0x86: // TUPLE2
                {
                    object b = Pop(at), a = Pop(at);
                    Push(new[] { a, b }, at);
                    break;
                }
                case 0x87: // TUPLE3
                {
                    object c = Pop(at), b = Pop(at), a = Pop(at);
                    Push(new[] { a, b, c }, at);
                    break;
                }
                case (byte)']': // EMPTY_LIST
                    Push(new List<object>(), at);
                    break;
                case (byte)'a': // APPEND
                {
                    object item = Pop(at);
                    if (Peek(at) is not List<object> list)
                        throw new ConversionException($"{Where(at)}: APPEND to a {Describe(Peek(at))}, not a list");
                    list.Add(item);
                    break;
                }
                case (byte)'e': // APPENDS
                {
                    var items = PopToMark(at);
                    if (Peek(at) is not List<object> list)
                        throw new ConversionException($"{Where(at)}: APPENDS to a {Describe(Peek(at))}, not a list");
                    list.AddRange(items);
                    break;
                }
                case (byte)'}': // EMPTY_DICT
                    Push(new PickledDict(), at);
                    break;
                case (byte)'s': // SETITEM
                {
                    object value = Pop(at), key = Pop(at);
                    SetItems(Peek(at), [key, value], at);
                    break;
                }
                case (byte)'u': // SETITEMS
                {
                    var items = PopToMark(at);
                    SetItems(Peek(at), items, at);
                    break;
                }
                case (byte)'q': // BINPUT
                    Put(Take(pickle, ref pos, 1, at)[0], at);
                    break;
                case (byte)'r': // LONG_BINPUT
                    Put(BinaryPrimitives.ReadUInt32LittleEndian(Take(pickle, ref pos, 4, at)), at);
                    break;
                case 0x94: // MEMOIZE
                    Put(memo.Count, at);
                    break;
                case (byte)'h': // BINGET
                    Push(Get(Take(pickle, ref pos, 1, at)[0], at), at);
                    break;
                case (byte)'j': // LONG_BINGET
                    Push(Get(BinaryPrimitives.ReadUInt32LittleEndian(Take(pickle, ref pos, 4, at)), at), at);
                    break;
                case (byte)'c': // GLOBAL "module\nname\n"
                {
                    string module = ReadLine(pickle, ref pos, at, name);
                    string global = ReadLine(pickle, ref pos, at, name);
                    Push(CheckGlobal(module, global, at, name), at);
                    break;
                }
                case 0x93: // STACK_GLOBAL
                {
                    object g = Pop(at), m = Pop(at);
                    if (m is not string module || g is not string global)
                        throw new ConversionException($"{Where(at)}: STACK_GLOBAL needs two strings");
                    Push(CheckGlobal(module, global, at, name), at);
                    break;
                }
                case (byte)'R': // REDUCE
                {
                    object args = Pop(at), callable = Pop(at);
                    Push(Reduce(callable, args, at, name), at);
                    break;
                }
                case (byte)'b': // BUILD
                {
                    object state = Pop(at);
                    object target = Peek(at);
                    // OrderedDict.__reduce__ carries instance attributes (a state_dict's _metadata
                    // of module versions) as a BUILD state: a dict, which the converter does not need.
                    if (target is not PickledDict || state is not PickledDict)
                        throw new ConversionException($"{Where(at)}: BUILD of a {Describe(target)} with a {Describe(state)}; only an OrderedDict's attribute dict is allowed");
                    break;
                }
                case (byte)'Q': // BINPERSID
                    Push(PersistentLoad(Pop(at), at, name), at);
                    break;
                case (byte)'J': // BININT
                    Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(pickle, ref pos, 4, at)), at);
                    break;
                case (byte)'K': // BININT1
                    Push((long)Take(pickle, ref pos, 1, at)[0], at);
                    break;
                case (byte)'M': // BININT2
                    Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(pickle, ref pos, 2, at)), at);
                    break;
                case 0x8a: // LONG1: n little-endian two's complement bytes
                {
                    int n = Take(pickle, ref pos, 1, at)[0];
                    if (n > 8)
                        throw new ConversionException($"{Where(at)}: LONG1 of {n} bytes exceeds 64 bits");
                    var b = Take(pickle, ref pos, n, at);
                    long v = 0;
                    for (int i = n - 1; i >= 0; i--)
                        v = (v << 8) | b[i];
                    if (n is > 0 and < 8 && (b[n - 1] & 0x80) != 0)
                        v -= 1L << (8 * n);
                    Push(v, at);
                    break;
                }
                case (byte)'G': // BINFLOAT (big-endian)
                    Push(BinaryPrimitives.ReadDoubleBigEndian(Take(pickle, ref pos, 8, at)), at);
                    break;
                case (byte)'N': // NONE
                    Push(None.Instance, at);
                    break;
                case 0x88: // NEWTRUE
                    Push(true, at);
                    break;
                case 0x89: // NEWFALSE
                    Push(false, at);
                    break;
                case (byte)'X': // BINUNICODE
                {
                    uint n = BinaryPrimitives.ReadUInt32LittleEndian(Take(pickle, ref pos, 4, at));
                    Push(Utf8(Take(pickle, ref pos, n, at), at), at);
                    break;
                }
                case 0x8c: // SHORT_BINUNICODE
                {
                    int n = Take(pickle, ref pos, 1, at)[0];
                    Push(Utf8(Take(pickle, ref pos, n, at), at), at);
                    break;
                }
                default:
                    throw new ConversionException($"{Where(at)}: opcode 0x{op:x2} ({OpcodeName(op)}) is not allowed: a torch state_dict never needs it, and the converter does not run arbitrary pickles");
            }
        }
    }

    private static string ReadLine(ReadOnlySpan<byte> p, ref int pos, int at, string name)
    {
        int end = p[pos..].IndexOf((byte)'\n');
        if (end < 0 || end > 512)
            throw new ConversionException($"{name}: pickle byte {at}: GLOBAL name not terminated by a newline within 512 bytes");
        var s = p.Slice(pos, end);
        pos += end + 1;
        foreach (byte b in s)
            if (b is < 0x20 or > 0x7e)
                throw new ConversionException($"{name}: pickle byte {at}: GLOBAL name holds a non-printable byte 0x{b:x2}");
        return Encoding.ASCII.GetString(s);
    }

    private static PickledGlobal CheckGlobal(string module, string global, int at, string name)
    {
        string full = module + "." + global;
        if (!AllowedGlobals.Contains(full))
            throw new ConversionException($"{name}: pickle byte {at}: global '{full}' is not allowed (a torch state_dict only names {string.Join(", ", AllowedGlobals.Take(3))} and torch.*Storage); refusing to load a pickle that could run code");
        return new PickledGlobal(module, global);
    }

    private static void SetItems(object target, List<object> items, int at)
    {
        if (target is not PickledDict dict)
            throw new ConversionException($"pickle byte {at}: SETITEM(S) on a {Describe(target)}, not a dict");
        if (items.Count % 2 != 0)
            throw new ConversionException($"pickle byte {at}: SETITEMS with an odd number of items");
        for (int i = 0; i < items.Count; i += 2)
            dict.Items.Add(new(items[i], items[i + 1]));
    }

    private static object Reduce(object callable, object args, int at, string name)
    {
        string where = $"{name}: pickle byte {at}";
        if (callable is not PickledGlobal g)
            throw new ConversionException($"{where}: REDUCE of a {Describe(callable)}; only allowed globals can be called");
        if (args is not object[] a)
            throw new ConversionException($"{where}: REDUCE of {g.FullName} with a {Describe(args)}, not an argument tuple");
        switch (g.FullName)
        {
            case "collections.OrderedDict":
                if (a.Length != 0)
                    throw new ConversionException($"{where}: collections.OrderedDict called with {a.Length} arguments; torch.save passes none");
                return new PickledDict();
            case "torch._utils._rebuild_tensor_v2":
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                if (a.Length is < 6 or > 7 || a[0] is not PickledStorage storage || a[1] is not long offset
                    || a[2] is not object[] size || a[3] is not object[] stride || a[4] is not bool || size.Length != stride.Length)
                    throw new ConversionException($"{where}: _rebuild_tensor_v2 arguments are not (storage, offset, size, stride, requires_grad, hooks)");
                if (a[5] is not PickledDict hooks || hooks.Items.Count != 0)
                    throw new ConversionException($"{where}: tensor with backward hooks; a state_dict has none");
                return new PickledTensor(storage, offset, Longs(size, where), Longs(stride, where));
            case "torch._utils._rebuild_parameter":
                // (data, requires_grad, backward_hooks)
                if (a.Length != 3 || a[0] is not PickledTensor t)
                    throw new ConversionException($"{where}: _rebuild_parameter arguments are not (tensor, requires_grad, hooks)");
                return t;
            default:
                throw new ConversionException($"{where}: {g.FullName} cannot be called; storages are only named in persistent ids");
        }
    }

    private static long[] Longs(object[] items, string where)
    {
        var result = new long[items.Length];
        for (int i = 0; i < items.Length; i++)
            result[i] = items[i] is long v ? v : throw new ConversionException($"{where}: tensor size/stride entry is a {Describe(items[i])}, not an integer");
        return result;
    }

    private static PickledStorage PersistentLoad(object pid, int at, string name)
    {
        string where = $"{name}: pickle byte {at}";
        if (pid is not object[] t || t.Length != 5 || t[0] is not "storage" || t[1] is not PickledGlobal type
            || t[2] is not string key || t[3] is not string location || t[4] is not long numel || numel < 0)
            throw new ConversionException($"{where}: persistent id is not ('storage', torch.<Type>Storage, key, location, numel)");
        SourceDType dtype = type.FullName switch
        {
            "torch.FloatStorage" => SourceDType.F32,
            "torch.DoubleStorage" => SourceDType.F64,
            "torch.HalfStorage" => SourceDType.F16,
            "torch.BFloat16Storage" => SourceDType.BF16,
            "torch.LongStorage" => SourceDType.I64,
            "torch.IntStorage" => SourceDType.I32,
            "torch.ShortStorage" => SourceDType.I16,
            "torch.CharStorage" => SourceDType.I8,
            "torch.ByteStorage" => SourceDType.U8,
            "torch.BoolStorage" => SourceDType.Bool,
            _ => throw new ConversionException($"{where}: persistent id names {type.FullName}, not a storage type"),
        };
        return new PickledStorage(dtype, key, location, numel);
    }

    internal static string Describe(object o) => o switch
    {
        PickledGlobal g => "global " + g.FullName,
        PickledDict => "dict",
        PickledTensor => "tensor",
        PickledStorage => "storage",
        object[] => "tuple",
        List<object> => "list",
        string => "string",
        long => "int",
        double => "float",
        bool => "bool",
        None => "None",
        _ => o.GetType().Name,
    };

    private static string OpcodeName(byte op) => op switch
    {
        (byte)'i' => "INST",
        (byte)'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        (byte)'P' => "PERSID",
        (byte)'S' => "STRING",
        (byte)'T' => "BINSTRING",
        (byte)'U' => "SHORT_BINSTRING",
        (byte)'B' => "BINBYTES",
        (byte)'C' => "SHORT_BINBYTES",
        (byte)'V' => "UNICODE",
        (byte)'I' => "INT",
        (byte)'L' => "LONG",
        (byte)'F' => "FLOAT",
        (byte)'l' => "LIST",
        (byte)'d' => "DICT",
        (byte)'g' => "GET",
        (byte)'p' => "PUT",
        (byte)'0' => "POP",
        (byte)'1' => "POP_MARK",
        (byte)'2' => "DUP",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x8b => "LONG4",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "unknown",
    };
}
