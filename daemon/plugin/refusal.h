// Why the plugin gate refused a plugin: one typed code per refusal. The code
// travels with the refusal's absl::Status (as a payload), in the audit record
// and, by its stable name, in the refusal message. Programs branch on the
// code (RefusalCodeOf), never on the message, which is for people.
//
// Thread: any (pure functions).
#pragma once

#include <optional>
#include <string_view>

#include "absl/status/status.h"

namespace aers::plugin {

/// Every reason the gate refuses a plugin (docs/plugins.md, "Refusal
/// reasons"). The names (RefusalCodeName) are stable: audit readers and
/// scripts match them.
enum class RefusalCode {
  // The plugin directory (step 1).
  kPathEscape,            ///< path_escape: a path leaves its directory
  kSymlink,               ///< symlink: a symlink on the path
  kNotFound,              ///< not_found: directory, manifest, module or root missing
  kInvalidName,           ///< invalid_name: directory name not a plugin name
  kDirectoryUnreadable,   ///< directory_unreadable
  kDirectoryType,         ///< directory_type: not a directory
  kDirectoryOwner,        ///< directory_owner: not root or the daemon's user
  kDirectoryPermissions,  ///< directory_permissions: group/world-writable
  // The manifest (step 2).
  kManifestUnreadable,   ///< manifest_unreadable
  kManifestType,         ///< manifest_type: not a regular file
  kManifestOwner,        ///< manifest_owner
  kManifestPermissions,  ///< manifest_permissions
  kManifestInvalid,      ///< manifest_invalid: malformed (line:column list)
  kNameMismatch,         ///< name_mismatch: manifest name != directory name
  kAbiMismatch,          ///< abi_mismatch: manifest or descriptor ABI != the host's
  // The module file (steps 3-5).
  kModuleOutsideAllowedDirs,  ///< module_outside_allowed_dirs (LADSPA absolute path)
  kModuleUnreadable,          ///< module_unreadable
  kModuleType,                ///< module_type: not a regular file
  kModuleOwner,               ///< module_owner
  kModulePermissions,         ///< module_permissions
  kModuleTooLarge,            ///< module_too_large: over max_module_bytes
  kBundleEntry,  ///< bundle_entry: LV2 bundle entry not allowed (hidden, special, symlink out)
  // Hash, signature, rollback (steps 6-8).
  kHashMismatch,          ///< hash_mismatch
  kSignatureMissing,      ///< signature_missing: required and absent
  kSignatureInvalid,      ///< signature_invalid: malformed, wrong, or comment tampered
  kSignatureType,         ///< signature_type: not a regular file
  kSignatureOwner,        ///< signature_owner
  kSignaturePermissions,  ///< signature_permissions
  kUntrustedKey,          ///< untrusted_key: signed by a key not trusted
  kRollback,              ///< rollback: serial lower than the recorded one
  kStateError,            ///< state_error: the serial record cannot be read or written
  // The ELF file (step 9).
  kElfInvalid,     ///< elf_invalid: not a well-formed ELF64 shared object for this host
  kElfRpath,       ///< elf_rpath: DT_RPATH or DT_RUNPATH
  kElfTextrel,     ///< elf_textrel: text relocations
  kElfExecstack,   ///< elf_execstack: executable or missing PT_GNU_STACK
  kElfDependency,  ///< elf_dependency: a DT_NEEDED not allowed
  // Loading (steps 10-13).
  kAlreadyLoaded,       ///< already_loaded: same soname/file name or plugin name loaded
  kDlopenFailed,        ///< dlopen_failed
  kEntryMissing,        ///< entry_missing: no entry symbol in the module itself
  kDescriptorInvalid,   ///< descriptor_invalid: bad descriptor table
  kKindNotAllowed,      ///< kind_not_allowed: kind not in allowed_node_kinds
  kKindExists,          ///< kind_exists: kind name already registered
  kLadspaLabelMissing,  ///< ladspa_label_missing
  kLadspaUnsupported,   ///< ladspa_unsupported
  kLv2UriMissing,       ///< lv2_uri_missing: a manifest URI is not a plugin of the bundle
  kLv2Unsupported,      ///< lv2_unsupported: a required feature or port type the host lacks
  kLv2StoreError,       ///< lv2_store_error: the store copy could not be made or differs
  kAuditError,          ///< audit_error: the load's audit record could not be written
  kInternal,            ///< internal: a check could not be carried out. Keep last.
};

/// The code's stable snake_case name, e.g. "hash_mismatch" (static storage).
const char* RefusalCodeName(RefusalCode code);

/// The absl::StatusCode a refusal is returned with: INVALID_ARGUMENT
/// (manifest_invalid, invalid_name), NOT_FOUND, ALREADY_EXISTS
/// (already_loaded, kind_exists), INTERNAL (state_error, lv2_store_error,
/// internal), UNAVAILABLE (audit_error), else PERMISSION_DENIED.
absl::StatusCode StatusCodeFor(RefusalCode code);

/// A refusal: StatusCodeFor(code), `message`, and `code` attached as a payload.
absl::Status RefusalStatus(RefusalCode code, std::string_view message);

/// The code a refusal status carries; nullopt for OK and for errors that are
/// not gate refusals.
std::optional<RefusalCode> RefusalCodeOf(const absl::Status& status);

}  // namespace aers::plugin
