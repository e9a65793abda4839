"""The reference horde's error return codes (`rc`) and the HTTP status each comes back with.

Source: SEMANTICS.md §2. Strings are kept byte-for-byte, including the quirky trailing periods and the
"ThingNotFound" family built by capitalising a type name (`"Image styleNotFound"`). Rcs the reference
documents but never actually emits are listed in `DOCUMENTED_BUT_NOT_EMITTED`, not in `RC`.

Two rcs have a second status: `SharedKeyExpired` and `DeletedUser` are 403 normally but 400 when raised
by a kudos transfer; every rc in `KUDOS_TRANSFER_RCS` is 400 on the transfer and award endpoints.
"""

from enum import StrEnum
from typing import Final


class RC(StrEnum):
    """Every rc the reference sends, as the exact wire string."""

    # 400
    BadRequest = "BadRequest"
    MissingPrompt = "MissingPrompt"
    CorruptPrompt = "CorruptPrompt"
    KudosValidationError = "KudosValidationError"
    NoWorkerModSelected = "NoWorkerModSelected"
    NoUserModSelected = "NoUserModSelected"
    NoHordeModSelected = "NoHordeModSelected"
    NoTeamModSelected = "NoTeamModSelected"
    NoFilterModSelected = "NoFilterModSelected"
    NoSharedKeyModSelected = "NoSharedKeyModSelected"
    InvalidSize = "InvalidSize"
    InvalidPromptSize = "InvalidPromptSize"
    TooManySteps = "TooManySteps"
    ProfaneWorkerName = "ProfaneWorkerName"
    ProfaneBridgeAgent = "ProfaneBridgeAgent"
    ProfaneWorkerInfo = "ProfaneWorkerInfo"
    ProfaneUserName = "ProfaneUserName"
    ProfaneUserContact = "ProfaneUserContact"
    ProfaneAdminComment = "ProfaneAdminComment"
    ProfaneTeamName = "ProfaneTeamName"
    ProfaneTeamInfo = "ProfaneTeamInfo"
    TooLongWorkerName = "TooLongWorkerName"
    TooLongUserName = "TooLongUserName"
    WorkerNameAlreadyExists = "WorkerNameAlreadyExists"
    TeamNameAlreadyExists = "TeamNameAlreadyExists"
    PolymorphicNameConflict = "PolymorphicNameConflict"
    ImageValidationFailed = "ImageValidationFailed"
    SourceImageResolutionExceeded = "SourceImageResolutionExceeded"
    SourceImageSizeExceeded = "SourceImageSizeExceeded"
    SourceImageUrlInvalid = "SourceImageUrlInvalid"
    SourceImageUnreadable = "SourceImageUnreadable"
    InpaintingMissingMask = "InpaintingMissingMask"
    SourceMaskUnnecessary = "SourceMaskUnnecessary"
    UnsupportedSampler = "UnsupportedSampler"
    UnsupportedModel = "UnsupportedModel"
    ControlNetUnsupported = "ControlNetUnsupported"
    SourceImageRequiredForModel = "SourceImageRequiredForModel"
    UnexpectedModelName = "UnexpectedModelName"
    ControlNetSourceMissing = "ControlNetSourceMissing"
    ControlNetInvalidPayload = "ControlNetInvalidPayload"
    ControlNetInpaintingMismatch = "ControlNetInpaintingMismatch"
    ControlNetMismatch = "ControlNetMismatch"
    ControlNetMismatchQR = "ControlNetMismatch."  # sic: the QR-code workflow's variant
    HiResMismatch = "HiResMismatch"
    TooManyUpscalers = "TooManyUpscalers"
    TooManyLoras = "TooManyLoras"
    BadLoraVersion = "BadLoraVersion"
    TooManyTIs = "TooManyTIs"
    BetaComparisonFault = "BetaComparisonFault"
    BadCFGDecimals = "BadCFGDecimals"
    BadCFGNumber = "BadCFGNumber"
    SpecialMissingPayload = "SpecialMissingPayload"
    SpecialMissingUsername = "SpecialMissingUsername"
    OnlyServiceAccountProxy = "OnlyServiceAccountProxy"
    RequiresTrust = "RequiresTrust"
    InvalidRemix = "InvalidRemix"
    InvalidTransparencyModel = "InvalidTransparencyModel"
    InvalidTransparencyImg2Img = "InvalidTransparencyImg2Img"
    InvalidTransparencyCN = "InvalidTransparencyCN"
    TokenOverflow = "TokenOverflow"
    MissingFullSamplerOrder = "MissingFullSamplerOrder"
    TooManyStopSequences = "TooManyStopSequences"
    ExcessiveStopSequence = "ExcessiveStopSequence"
    UserNotDeleted = "UserNotDeleted"
    InvalidPriorityUsername = "InvalidPriorityUsername"
    ProcGenNotFound = "ProcGenNotFound"
    InvalidAestheticAttempt = "InvalidAestheticAttempt"
    AestheticsNotCompleted = "AestheticsNotCompleted"
    AestheticsNotPublic = "AestheticsNotPublic"
    AestheticsDuplicate = "AestheticsDuplicate"
    AestheticsMissing = "AestheticsMissing"
    AestheticsSolo = "AestheticsSolo"
    AestheticsConfused = "AestheticsConfused"
    AestheticsAlreadyExist = "AestheticsAlreadyExist"
    AestheticsServerRejected = "AestheticsServerRejected"
    AestheticsServerError = "AestheticsServerError"
    AestheticsServerDown = "AestheticsServerDown"
    AestheticsServerTimeout = "AestheticsServerTimeout"
    DuplicateGen = "DuplicateGen"
    AbortedGen = "AbortedGen"
    NoValidWorkers = "NoValidWorkers"
    MaintenanceMode = "MaintenanceMode"  # 400, although the reference's docs say 503
    NulByteInPayload = "NulByteInPayload"
    TooManyExtraSourceImages = "TooManyExtraSourceImages."  # sic
    MoreThanMinExtraSourceImage = "MoreThanMinExtraSourceImage."  # sic
    InvalidExtraSourceImages = "InvalidExtraSourceImages."  # sic
    InvalidExtraTexts = "InvalidExtraTexts."  # sic
    MissingExtraTexts = "MissingExtraTexts."  # sic
    # 400, kudos transfer and award
    KudosTransferNotEnough = "KudosTransferNotEnough"
    NegativeKudosTransfer = "NegativeKudosTransfer"
    InvalidKudosTransferAmount = "InvalidKudosTransferAmount"
    TooFastKudosTransfers = "TooFastKudosTransfers"
    KudosTransferToSelf = "KudosTransferToSelf"
    KudosTransferToAnon = "KudosTransferToAnon"
    KudosTransferFromAnon = "KudosTransferFromAnon"
    InvalidTargetUsername = "InvalidTargetUsername"
    FaultWhenKudosSending = "FaultWhenKudosSending"
    FaultWhenKudosReceiving = "FaultWhenKudosReceiving"
    SourceAccountFlagged = "SourceAccountFlagged"
    TargetAccountFlagged = "TargetAccountFlagged"
    EducationCannotSendKudos = "EducationCannotSendKudos"
    IdempotencyKeyConflict = "IdempotencyKeyConflict"
    InvalidAwardUsername = "InvalidAwardUsername"
    KudosAwardToAnon = "KudosAwardToAnon"
    # 401
    InvalidAPIKey = "InvalidAPIKey"
    # 403
    Forbidden = "Forbidden"
    WrongCredentials = "WrongCredentials"
    NotAdmin = "NotAdmin"
    NotModerator = "NotModerator"
    NotOwner = "NotOwner"
    NotPrivileged = "NotPrivileged"
    NotAllowedAwards = "NotAllowedAwards"
    AnonForbidden = "AnonForbidden"
    AnonForbiddenWorker = "AnonForbiddenWorker"
    AnonForbiddenUserMod = "AnonForbiddenUserMod"
    AnonForbiddenUser = "AnonForbiddenUser"
    NotTrusted = "NotTrusted"
    UntrustedTeamCreation = "UntrustedTeamCreation"
    UntrustedUnsafeIP = "UntrustedUnsafeIP"
    WorkerMaintenance = "WorkerMaintenance"
    WorkerFlaggedMaintenance = "WorkerFlaggedMaintenance"
    TooManySameIPs = "TooManySameIPs"
    WorkerInviteOnly = "WorkerInviteOnly"
    UnsafeIP = "UnsafeIP"
    TimeoutIP = "TimeoutIP"
    TooManyNewIPs = "TooManyNewIPs"
    KudosUpfront = "KudosUpfront"
    SharedKeyInsufficientKudos = "SharedKeyInsufficientKudos"
    SharedKeyEmpty = "SharedKeyEmpty"
    SharedKeyExpired = "SharedKeyExpired"
    SharedKeyAssignedStyles = "SharedKeyAssignedStyles"
    TooManyWorkers = "TooManyWorkers"
    TooManyWorkersTrusted = "TooManyWorkersTrusted"
    BannedClientAgent = "BannedClientAgent"
    BetaAnonForbidden = "BetaAnonForbidden"
    DeletedUser = "DeletedUser"
    CannotDeleteMod = "CannotDeleteMod"
    NotUserOrMod = "NotUserOrMod"
    CannotWipeActiveUser = "CannotWipeActiveUser"
    NonServiceForbidden = "NonServiceForbidden"
    MessagesOnlyOwnWorkers = "MessagesOnlyOwnWorkers"
    StylesAnonForbidden = "StylesAnonForbidden"
    StylesRequiresCustomizer = "StylesRequiresCustomizer"
    # 404
    InvalidJobID = "InvalidJobID"
    RequestNotFound = "RequestNotFound"
    WorkerNotFound = "WorkerNotFound"
    TeamNotFound = "TeamNotFound"
    UserNotFound = "UserNotFound"
    StyleNotFound = "StyleNotFound"
    CollectionNotFound = "CollectionNotFound"
    FilterNotFound = "FilterNotFound"
    WorkermessageNotFound = "WorkermessageNotFound"  # sic
    ImageStyleNotFound = "Image styleNotFound"  # sic: "<Type>NotFound" with the type name "Image style"
    # 410, 423, 429
    RequestExpired = "RequestExpired"
    Locked = "Locked"
    TooManyPrompts = "TooManyPrompts"


_NON_400: Final[dict[int, tuple[RC, ...]]] = {
    401: (RC.InvalidAPIKey,),
    403: (
        RC.Forbidden,
        RC.WrongCredentials,
        RC.NotAdmin,
        RC.NotModerator,
        RC.NotOwner,
        RC.NotPrivileged,
        RC.NotAllowedAwards,
        RC.AnonForbidden,
        RC.AnonForbiddenWorker,
        RC.AnonForbiddenUserMod,
        RC.AnonForbiddenUser,
        RC.NotTrusted,
        RC.UntrustedTeamCreation,
        RC.UntrustedUnsafeIP,
        RC.WorkerMaintenance,
        RC.WorkerFlaggedMaintenance,
        RC.TooManySameIPs,
        RC.WorkerInviteOnly,
        RC.UnsafeIP,
        RC.TimeoutIP,
        RC.TooManyNewIPs,
        RC.KudosUpfront,
        RC.SharedKeyInsufficientKudos,
        RC.SharedKeyEmpty,
        RC.SharedKeyExpired,
        RC.SharedKeyAssignedStyles,
        RC.TooManyWorkers,
        RC.TooManyWorkersTrusted,
        RC.BannedClientAgent,
        RC.BetaAnonForbidden,
        RC.DeletedUser,
        RC.CannotDeleteMod,
        RC.NotUserOrMod,
        RC.CannotWipeActiveUser,
        RC.NonServiceForbidden,
        RC.MessagesOnlyOwnWorkers,
        RC.StylesAnonForbidden,
        RC.StylesRequiresCustomizer,
    ),
    404: (
        RC.InvalidJobID,
        RC.RequestNotFound,
        RC.WorkerNotFound,
        RC.TeamNotFound,
        RC.UserNotFound,
        RC.StyleNotFound,
        RC.CollectionNotFound,
        RC.FilterNotFound,
        RC.WorkermessageNotFound,
        RC.ImageStyleNotFound,
    ),
    410: (RC.RequestExpired,),
    423: (RC.Locked,),
    429: (RC.TooManyPrompts,),
}

STATUS: Final[dict[RC, int]] = {rc: 400 for rc in RC} | {
    rc: status for status, rcs in _NON_400.items() for rc in rcs
}
"""The HTTP status each rc comes back with (transfer endpoints: see `KUDOS_TRANSFER_RCS`)."""

KUDOS_TRANSFER_RCS: Final = frozenset(
    {
        RC.KudosValidationError,
        RC.KudosTransferNotEnough,
        RC.NegativeKudosTransfer,
        RC.InvalidKudosTransferAmount,
        RC.TooFastKudosTransfers,
        RC.KudosTransferToSelf,
        RC.KudosTransferToAnon,
        RC.KudosTransferFromAnon,
        RC.InvalidTargetUsername,
        RC.SharedKeyExpired,
        RC.FaultWhenKudosSending,
        RC.FaultWhenKudosReceiving,
        RC.SourceAccountFlagged,
        RC.TargetAccountFlagged,
        RC.EducationCannotSendKudos,
        RC.DeletedUser,
        RC.IdempotencyKeyConflict,
        RC.InvalidAwardUsername,
        RC.KudosAwardToAnon,
    }
)
"""Rcs raised by kudos transfer/award: all 400 there, even those that are 403 elsewhere."""

DOCUMENTED_BUT_NOT_EMITTED: Final = frozenset(
    {
        "SpecialFieldNeedsSpecialUser",
        "SpecialModelNeedsSpecialUser",
        "SpecialForbidden",
        "StyleMismatch",
        "StyleGetMistmatch",
        "StylePromptMissingVars",
        "SharedKeyInvalid",
        "TooManyStyleExamples",
        "ExampleURLAlreadyInUse",
    }
)
"""Rcs the reference passes in the wrong argument slot: they reach the wire as BadRequest/Forbidden."""


def rc_status(rc: RC | str) -> int:
    """The HTTP status for an rc; unknown `<Type>NotFound` strings are 404, anything else unknown 400."""
    try:
        return STATUS[RC(rc)]
    except ValueError:
        return 404 if str(rc).endswith("NotFound") else 400
