namespace Weft.Streaming.Kafka;

/// <summary>
/// A Kafka source or producer failed. <see cref="IsTransient"/> says whether the same call may succeed
/// later (a broker or coordinator briefly unavailable); a fatal librdkafka error is never transient:
/// the source has stopped and must be reopened.
/// </summary>
public sealed class KafkaSourceException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KafkaSourceException(string message, string errorCode, bool isTransient, Exception? innerException = null)
        : base(message, innerException)
    {
        ErrorCode = errorCode;
        IsTransient = isTransient;
    }

    /// <summary>librdkafka's name for the error, e.g. <c>Local_Fatal</c> or <c>CoordinatorNotAvailable</c>.</summary>
    public string ErrorCode { get; }

    /// <summary>True when retrying the same operation later may succeed.</summary>
    public bool IsTransient { get; }
}
