namespace Weft.Online;

/// <summary>
/// A failure of the online store: it cannot be opened, or a statement failed. Nothing of a failed
/// append was stored (neither elements nor checkpoint). <see cref="IsTransient"/> tells whether
/// running the same call again may succeed unchanged (a dropped connection, a busy database, a
/// serialization failure or deadlock).
/// </summary>
public sealed class OnlineStoreException : Exception
{
    internal OnlineStoreException(string store, string message, bool isTransient, Exception? inner = null)
        : base(message, inner)
    {
        Store = store;
        IsTransient = isTransient;
    }

    /// <summary>The store concerned, as <see cref="IOnlineStore.Describe"/> names it.</summary>
    public string Store { get; }

    /// <summary>True when retrying the operation unchanged may succeed.</summary>
    public bool IsTransient { get; }
}
