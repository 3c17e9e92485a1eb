#include "plugin/refusal.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"

namespace aers::plugin {
namespace {

// The payload key of a refusal's code (its value: RefusalCodeName).
constexpr absl::string_view kPayloadKey = "aers.plugin.RefusalCode";

}  // namespace

const char* RefusalCodeName(RefusalCode code) {
  switch (code) {
    case RefusalCode::kPathEscape:
      return "path_escape";
    case RefusalCode::kSymlink:
      return "symlink";
    case RefusalCode::kNotFound:
      return "not_found";
    case RefusalCode::kInvalidName:
      return "invalid_name";
    case RefusalCode::kDirectoryUnreadable:
      return "directory_unreadable";
    case RefusalCode::kDirectoryType:
      return "directory_type";
    case RefusalCode::kDirectoryOwner:
      return "directory_owner";
    case RefusalCode::kDirectoryPermissions:
      return "directory_permissions";
    case RefusalCode::kManifestUnreadable:
      return "manifest_unreadable";
    case RefusalCode::kManifestType:
      return "manifest_type";
    case RefusalCode::kManifestOwner:
      return "manifest_owner";
    case RefusalCode::kManifestPermissions:
      return "manifest_permissions";
    case RefusalCode::kManifestInvalid:
      return "manifest_invalid";
    case RefusalCode::kNameMismatch:
      return "name_mismatch";
    case RefusalCode::kAbiMismatch:
      return "abi_mismatch";
    case RefusalCode::kModuleOutsideAllowedDirs:
      return "module_outside_allowed_dirs";
    case RefusalCode::kModuleUnreadable:
      return "module_unreadable";
    case RefusalCode::kModuleType:
      return "module_type";
    case RefusalCode::kModuleOwner:
      return "module_owner";
    case RefusalCode::kModulePermissions:
      return "module_permissions";
    case RefusalCode::kModuleTooLarge:
      return "module_too_large";
    case RefusalCode::kBundleEntry:
      return "bundle_entry";
    case RefusalCode::kHashMismatch:
      return "hash_mismatch";
    case RefusalCode::kSignatureMissing:
      return "signature_missing";
    case RefusalCode::kSignatureInvalid:
      return "signature_invalid";
    case RefusalCode::kSignatureType:
      return "signature_type";
    case RefusalCode::kSignatureOwner:
      return "signature_owner";
    case RefusalCode::kSignaturePermissions:
      return "signature_permissions";
    case RefusalCode::kUntrustedKey:
      return "untrusted_key";
    case RefusalCode::kRollback:
      return "rollback";
    case RefusalCode::kStateError:
      return "state_error";
    case RefusalCode::kElfInvalid:
      return "elf_invalid";
    case RefusalCode::kElfRpath:
      return "elf_rpath";
    case RefusalCode::kElfTextrel:
      return "elf_textrel";
    case RefusalCode::kElfExecstack:
      return "elf_execstack";
    case RefusalCode::kElfDependency:
      return "elf_dependency";
    case RefusalCode::kAlreadyLoaded:
      return "already_loaded";
    case RefusalCode::kDlopenFailed:
      return "dlopen_failed";
    case RefusalCode::kEntryMissing:
      return "entry_missing";
    case RefusalCode::kDescriptorInvalid:
      return "descriptor_invalid";
    case RefusalCode::kKindNotAllowed:
      return "kind_not_allowed";
    case RefusalCode::kKindExists:
      return "kind_exists";
    case RefusalCode::kLadspaLabelMissing:
      return "ladspa_label_missing";
    case RefusalCode::kLadspaUnsupported:
      return "ladspa_unsupported";
    case RefusalCode::kLv2UriMissing:
      return "lv2_uri_missing";
    case RefusalCode::kLv2Unsupported:
      return "lv2_unsupported";
    case RefusalCode::kLv2StoreError:
      return "lv2_store_error";
    case RefusalCode::kAuditError:
      return "audit_error";
    case RefusalCode::kInternal:
      return "internal";
  }
  return "internal";
}

absl::StatusCode StatusCodeFor(RefusalCode code) {
  switch (code) {
    case RefusalCode::kManifestInvalid:
    case RefusalCode::kInvalidName:
      return absl::StatusCode::kInvalidArgument;
    case RefusalCode::kNotFound:
      return absl::StatusCode::kNotFound;
    case RefusalCode::kAlreadyLoaded:
    case RefusalCode::kKindExists:
      return absl::StatusCode::kAlreadyExists;
    case RefusalCode::kStateError:
    case RefusalCode::kLv2StoreError:
    case RefusalCode::kInternal:
      return absl::StatusCode::kInternal;
    case RefusalCode::kAuditError:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kPermissionDenied;
  }
}

absl::Status RefusalStatus(RefusalCode code, std::string_view message) {
  absl::Status status(StatusCodeFor(code), std::string(message));
  status.SetPayload(kPayloadKey, absl::Cord(RefusalCodeName(code)));
  return status;
}

std::optional<RefusalCode> RefusalCodeOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kPayloadKey);  // absl::optional<absl::Cord>
  if (!payload) return std::nullopt;
  for (int i = 0; i <= static_cast<int>(RefusalCode::kInternal); ++i) {
    const auto code = static_cast<RefusalCode>(i);
    if (*payload == RefusalCodeName(code)) return code;
  }
  return std::nullopt;
}

}  // namespace aers::plugin
