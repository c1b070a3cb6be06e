using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace BinEngine.Runtime;

/// <summary>
/// A read-only view of <c>Length</c> elements of unmanaged memory that does not move: a tensor inside
/// the memory-mapped model file, or a pinned array. It lets the model keep its weights where the file
/// put them (no copy at load) while being stored in ordinary fields, which a span cannot be.
/// Whoever creates one keeps the owner (the mapping, the array) alive for as long as the view is used.
/// </summary>
internal readonly unsafe struct TensorView<T> where T : unmanaged
{
    private readonly T* _pointer;

    // A pinned array is only reachable through this view: without this reference the GC would collect
    // it (pinning keeps an object in place, not alive) and the pointer would dangle.
    private readonly T[]? _owner;

    /// <summary>Number of elements.</summary>
    public int Length { get; }

    private TensorView(T* pointer, int length, T[]? owner = null)
    {
        _pointer = pointer;
        Length = length;
        _owner = owner;
    }

    /// <summary>The elements as a span.</summary>
    public ReadOnlySpan<T> Span => new(_pointer, Length);

    /// <summary>True for a default (absent) view.</summary>
    public bool IsEmpty => Length == 0;

    /// <summary>Views memory that the caller guarantees will not move (memory-mapped, native, or pinned).</summary>
    public static TensorView<T> OverFixedMemory(ReadOnlySpan<T> memory) =>
        new((T*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(memory)), memory.Length);

    /// <summary>Copies <paramref name="values"/> into a new array on the pinned object heap and views it.</summary>
    public static TensorView<T> Pinned(ReadOnlySpan<T> values)
    {
        T[] array = GC.AllocateUninitializedArray<T>(values.Length, pinned: true);
        values.CopyTo(array);
        return new TensorView<T>((T*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array)), array.Length, array);
    }
}
